// fdrun --socket-activation end to end (a real server that checks the
// protocol answers through the socket fdrun opened), its errors, and
// the same server under systemd-socket-activate for comparison; and
// !socket host and service names: parsed unresolved, resolved when
// opened and in --dry-run.
import FDRemap
import FDRemapTestSupport
import FDRunConfig
import Foundation
import Glibc
import SystemPackage
import Testing

let activationServer = packageRoot + "/Tests/Probes/activation-server/server.py"
/// The system's Python by path (a `python3` in `PATH` may be a shim).
let python = "/usr/bin/python3"

/// The local address of the socket `fd`, as `a.b.c.d:port` or `[v6]:port`.
func localAddress(_ fd: Int32) -> String {
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    var serv = [CChar](repeating: 0, count: Int(NI_MAXSERV))
    let ok = withUnsafeMutablePointer(to: &ss) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            getsockname(fd, sa, &len) == 0 &&
                getnameinfo(sa, len, &host, socklen_t(host.count), &serv, socklen_t(serv.count),
                            NI_NUMERICHOST | NI_NUMERICSERV) == 0
        }
    }
    guard ok else { return "?" }
    let text = { (b: [CChar]) in
        String(decoding: b.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let h = text(host)
    return (h.contains(":") ? "[\(h)]" : h) + ":" + text(serv)
}

/// A listening TCP socket on 127.0.0.1, close-on-exec (the caller closes it).
func listener() -> Int32 {
    let fd = loopbackSocket().fd
    precondition(fd >= 0, "listen: errno \(errno)")
    return fd
}

@Suite struct FDRunSocketActivationTests {
    /// fdrun opens `localhost:PORT` (a name, resolved now) and hands it at
    /// 3, its inherited descriptor 3 at 4, its own 0-2, the arguments
    /// after --, and the protocol's variables: the server checks them (in
    /// the exec form LISTEN_PID is fdrun's pid, which the server keeps),
    /// accepts on 3 and answers.
    @Test func realServerThroughFdrun() {
        let dir = TempDir()
        let port = freeLoopbackPort()
        let cfg = dir.write("sockets.yaml", """
            web: !socket {bind: "localhost:\(port)"}
            extra: !fd 3
            """)
        let inherited = listener()
        defer { close(inherited) }
        let run = Launched(["--socket-activation", "--env", "LISTEN_FDS=9", "--env", "KEEP=1",
                            python, cfg, "--", activationServer, "--flag", "x y"],
                           extra: [inherited])
        let line = askLoopback(port: port)
        let result = run.finish(timeout: 30)
        #expect(result.ending == .exited(0), "\(result.stderr)")
        let a = jsonObject(line)
        #expect(a["failed"] as? [String] == [], "\(line ?? "no answer"): \(result.stderr)")
        #expect(a["pid"] as? Int == Int(run.pid))
        #expect(a["listen_pid"] as? String == "\(run.pid)")
        #expect(a["listen_fds"] as? Int == 2)
        #expect(a["names"] as? [String] == ["web", "extra"])
        #expect(a["argv"] as? [String] == ["--flag", "x y"])
        #expect(a["environment"] as? [String] == ["LISTEN_FDNAMES", "LISTEN_FDS", "LISTEN_PID"])
        #expect(a["fds"] as? [String: String] == [
            "0": "fifo", "1": "fifo", "2": "fifo",
            "3": "socket inet stream listening", "4": "socket inet stream listening",
        ])
    }

    /// --dry-run shows the plan with the resolved address and the
    /// environment the program would get (LISTEN_PID being fdrun's own
    /// pid), and starts and opens nothing.
    @Test func dryRun() {
        let dir = TempDir()
        let cfg = dir.write("sockets.yaml", """
            http: !socket {bind: "127.0.0.1:http-alt"}
            log: !file {path: \(dir.path)/log, mode: write}
            """)
        let run = Launched(["--socket-activation", "--dry-run", "--env", "A=1", "/bin/true", cfg,
                            "--", "-v"])
        let result = run.finish()
        #expect(result.ending == .exited(0), "\(result.stderr)")
        #expect(result.stdout == """
            program: /bin/true
            arguments: 1
              "-v"
            descriptors: 5
              0: fdrun's descriptor 0 (stdin)
              1: fdrun's descriptor 1 (stdout)
              2: fdrun's descriptor 2 (stderr)
              3: "http": !socket inet stream listening on 127.0.0.1:http-alt (127.0.0.1:8080)  (\(cfg):1:7)
              4: "log": !file "\(dir.path)/log" opened write  (\(cfg):2:6)
            environment: 4 variables
              A=1
              LISTEN_FDS=2
              LISTEN_FDNAMES=http:log
              LISTEN_PID=\(run.pid)

            """)
        #expect(!dir.exists("log"))
    }

    /// Each fails with status 127, a located message, and leaves the
    /// existing file as it was (it is emptied only once every check has
    /// passed) and no socket file behind. (E2BIG cannot be reached
    /// through fdrun here: the program's strings are a subset of
    /// fdrun's own, which had to fit; Program.checkArguments is tested
    /// with socket activation in FDRemapLaunchTests.)
    static let failures: [(String, [String], String)] = [
        ("- !fd 0", [], "cfg.yaml:1:1: error: with --socket-activation the configuration is a map of socket names to descriptors (name: !socket {bind: A}), not a sequence"),
        ("", [], "cfg.yaml:1:1: error: with --socket-activation the configuration is a map of socket names to descriptors"),
        ("web: 80", [], "cfg.yaml:1:6: error: the value of \"web\" is the int 80, not a descriptor (!socket, !file or !fd)"),
        ("web: [!fd 0]", [], "cfg.yaml:1:6: error: the value of \"web\" is a sequence, not a descriptor"),
        ("\"a:b\": !fd 0", [], "cfg.yaml:1:1: error: \"a:b\" cannot be a socket name in LISTEN_FDNAMES (at most 255 printable ASCII characters, no \":\")"),
        ("ok: !fd 0\n7: !fd 1", [], "cfg.yaml:2:1: error: socket names are strings, not the int 7"),
        ("log: !file {path: LOG, mode: write}\nsock: !socket {bind: SOCK}\nweb: !socket {bind: \"localhost:no-such-service\"}",
         [], "cfg.yaml:3:6: error: !socket bind localhost:no-such-service (stream): cannot resolve \"localhost:no-such-service\": "),
        ("log: !file {path: LOG, mode: write}\nsock: !socket {bind: SOCK}\nweb: !fd 99", [],
         "cfg.yaml:3:6: error: !fd 99: descriptor 99 is not open"),
    ]

    @Test(arguments: failures)
    func fails(_ yaml: String, _ arguments: [String], _ message: String) {
        let dir = TempDir()
        dir.write("LOG", "keep me\n")
        let cfg = dir.write("cfg.yaml", yaml.replacingOccurrences(of: "LOG", with: dir.path + "/LOG")
            .replacingOccurrences(of: "SOCK", with: dir.path + "/s.sock"))
        let run = fdrun(["--socket-activation", "/bin/true", cfg] + (arguments.isEmpty ? [] : ["--"] + arguments))
        #expect(run.ending == .exited(127))
        #expect(run.stderr.hasPrefix(message) || run.stderr.hasPrefix(dir.path + "/" + message), "\(run.stderr)")
        #expect(run.stdout.isEmpty)
        #expect(FileManager.default.contents(atPath: dir.path + "/LOG") == Data("keep me\n".utf8))
        #expect(!dir.exists("s.sock"))
    }

    /// Program arguments after -- belong to --socket-activation.
    @Test func argumentsNeedSocketActivation() {
        let run = fdrun(["/bin/true", "-", "--", "x"], stdin: "a: 1")
        #expect(run.ending == .exited(127))
        #expect(run.stderr.hasPrefix("fdrun: arguments after -- are for --socket-activation"), "\(run.stderr)")
    }

    /// The same server under systemd-socket-activate (where installed),
    /// and how it differs: it starts the program only at the first
    /// connection (until then it is systemd-socket-activate itself,
    /// which reports on standard error); it too closes what it does not
    /// pass (its inherited 3 does not reach the program); it sets
    /// LISTEN_FDNAMES only when given --fdname.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
    func systemdSocketActivateForComparison() throws {
        let port = freeLoopbackPort()
        let inherited = listener()
        defer { close(inherited) }
        let run = Launched(["-l", "127.0.0.1:\(port)", "--fdname=web", python, activationServer, "a"],
                           extra: [inherited], executable: "/usr/bin/systemd-socket-activate")
        // Before any connection: still systemd-socket-activate.
        var exe = ""
        for _ in 0..<100 {
            exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(run.pid)/exe")) ?? ""
            if !exe.isEmpty { break }
            usleep(10_000)
        }
        #expect(exe.hasSuffix("systemd-socket-activate"), "\(exe)")
        let line = askLoopback(port: port)
        let result = run.finish(timeout: 30)
        #expect(result.ending == .exited(0), "\(result.stderr)")
        let a = jsonObject(line)
        #expect(a["failed"] as? [String] == [], "\(line ?? "no answer")")
        #expect(a["listen_pid"] as? String == "\(run.pid)")
        #expect(a["names"] as? [String] == ["web"])
        #expect(a["fds"] as? [String: String] == [
            "0": "fifo", "1": "fifo", "2": "fifo", "3": "socket inet stream listening",
        ])
        #expect(result.stderr.contains("Listening on 127.0.0.1:\(port) as 3."), "\(result.stderr)")
        // Without --fdname: no LISTEN_FDNAMES at all.
        let port2 = freeLoopbackPort()
        let bare = Launched(["-l", "127.0.0.1:\(port2)", python, activationServer],
                            executable: "/usr/bin/systemd-socket-activate")
        let b = jsonObject(askLoopback(port: port2))
        _ = bare.finish(timeout: 30)
        #expect(b["environment"] as? [String] == ["LISTEN_FDS", "LISTEN_PID"])
        #expect(b["names"] is NSNull)
    }
}

@Suite struct SocketNameTests {
    /// Names are parsed, not resolved: the plan keeps them as written.
    @Test func parsedUnresolved() throws {
        let p = try plan("""
            - !socket {bind: "localhost:0"}
            - !socket {connect: "127.0.0.1:http-alt"}
            - !socket {bind: "[::1]:http-alt", domain: inet6}
            - !socket {bind: "localhost:ntp", type: dgram}
            - !socket {bind: "no-such-host.invalid:80"}
            """)
        #expect(p.sources.map(\.kind) == [
            .socket(SocketSpec(.bind, .name(host: "localhost", service: "0"))),
            .socket(SocketSpec(.connect, .name(host: "127.0.0.1", service: "http-alt"))),
            .socket(SocketSpec(.bind, .name(host: "::1", service: "http-alt"), family: .inet6)),
            .socket(SocketSpec(.bind, .name(host: "localhost", service: "ntp"), kind: .dgram)),
            .socket(SocketSpec(.bind, .name(host: "no-such-host.invalid", service: "80"))),
        ])
        #expect(p.sources.map { "\($0.kind)" }.count == 5)
        guard case .socket(let v6) = p.sources[2].kind else { return }
        #expect(v6.address.description == "[::1]:http-alt")
    }

    /// Resolved as getaddrinfo says, for the socket's type: http-alt is
    /// 8080/tcp, ntp 123/udp; a service of the other type does not
    /// resolve.
    @Test(arguments: [
        ("127.0.0.1:http-alt", SocketSpec.Kind.stream, nil, "127.0.0.1:8080"),
        ("localhost:ntp", .dgram, nil, "127.0.0.1:123"),
        ("[::1]:http-alt", .stream, SocketSpec.Family.inet6, "[::1]:8080"),
        ("localhost:80", .stream, .inet, "127.0.0.1:80"),
    ] as [(String, SocketSpec.Kind, SocketSpec.Family?, String)])
    func resolved(_ text: String, _ kind: SocketSpec.Kind, _ family: SocketSpec.Family?,
                  _ first: String) throws {
        let domain = family.map { ", domain: \($0.rawValue)" } ?? ""
        let p = try plan("!socket {bind: \"\(text)\", type: \(kind.rawValue)\(domain)}")
        guard case .socket(let s) = p.sources.first?.kind else {
            Issue.record("no socket")
            return
        }
        #expect(try s.addresses(at: p.sources[0].location).first?.description == first)
        #expect(try p.resolvedNames()[0]?.description == first)
    }

    @Test func unresolvable() throws {
        let p = try plan("a: !socket {bind: \"localhost:http-alt\", type: dgram}")
        #expect(throws: ConfigurationError.self) { try p.resolvedNames() }
        do {
            _ = try p.resolvedNames()
        } catch {
            #expect(error.description == "cfg.yaml:1:4: !socket bind localhost:http-alt (dgram): cannot resolve \"localhost:http-alt\": Servname not supported for ai_socktype")
        }
    }

    /// `localhost:0` opened: bound where getaddrinfo(3) puts localhost
    /// first on this machine, at a port the kernel chose, and listening.
    @Test func localhostZeroBindsWhatTheResolverSays() throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG | AI_PASSIVE
        var list: UnsafeMutablePointer<addrinfo>?
        #expect(getaddrinfo("localhost", "0", &hints, &list) == 0)
        let family = list?.pointee.ai_family
        freeaddrinfo(list)
        let p = try plan("a: !socket {bind: \"localhost:0\"}")
        let exe = FileDescriptor(rawValue: open("/bin/true", O_RDONLY | O_CLOEXEC))
        defer { try? exe.close() }
        let opened = try OpenedDescriptors(p, executable: exe,
                                           inherited: InheritedDescriptors(numbers: []))
        let fd = opened.descriptors[0].rawValue
        let address = localAddress(fd)
        #expect(address.hasPrefix(family == AF_INET6 ? "[::1]:" : "127.0.0.1:"), "\(address)")
        #expect(!address.hasSuffix(":0"))
        var on: CInt = 0
        var len = socklen_t(MemoryLayout<CInt>.size)
        #expect(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on == 1)
    }

    /// fdrun's dry run shows the names resolved; its real run fails at
    /// the tag for a name that does not resolve, with what it opened
    /// before closed and removed.
    @Test func fdrunDryRunAndFailure() {
        let run = fdrun(["--dry-run", probePath], stdin: """
            - !socket {bind: "localhost:ntp", type: dgram}
            - !socket {connect: "127.0.0.1:http-alt"}
            """)
        #expect(run.ending == .exited(0), "\(run.stderr)")
        #expect(run.stdout.contains("  0: !socket inet dgram bound to localhost:ntp (127.0.0.1:123)  (<stdin>:1:3)\n"), "\(run.stdout)")
        #expect(run.stdout.contains("  1: !socket inet stream connected to 127.0.0.1:http-alt (127.0.0.1:8080)  (<stdin>:2:3)\n"), "\(run.stdout)")
        let dir = TempDir()
        let bad = fdrun([probePath], stdin: """
            a: !socket {bind: \(dir.path)/s.sock}
            b: !socket {bind: "localhost:no-such-service"}
            """)
        #expect(bad.ending == .exited(127))
        #expect(bad.stderr == "<stdin>:2:4: error: !socket bind localhost:no-such-service (stream): cannot resolve \"localhost:no-such-service\": Servname not supported for ai_socktype\n")
        #expect(!dir.exists("s.sock"))
    }
}
