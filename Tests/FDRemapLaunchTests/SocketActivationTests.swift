// Socket activation (systemd's sd_listen_fds protocol) from Swift: a real
// server that checks the protocol itself and answers on its socket, the
// probe's exact table and environment, PROGRAM_LISTEN_PID from C, and
// the errors (bad names, a closed descriptor, E2BIG) with nothing left.
import CFDRemapHost
import FDRemap
import FDRemapTestSupport
import Foundation
import Glibc
import SystemPackage
import Testing

/// The package's root (this file is Tests/FDRemapLaunchTests/...).
let launchPackageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The checking server (Tests/Probes/activation-server/server.py), run by
/// the system's Python by path: a `python3` found in `PATH` may be a
/// pyenv shim, a `#!` script that takes its name from `$0`, which is
/// `/dev/fd/N` for a script started by descriptor.
let python = "/usr/bin/python3"

/// The checking server (Tests/Probes/activation-server/server.py).
let activationServer = launchPackageRoot + "/Tests/Probes/activation-server/server.py"

/// A TCP socket listening on 127.0.0.1, owned by `o`; its descriptor and port.
func listeningSocket(_ o: Opened) -> (FileDescriptor, UInt16) {
    let (fd, port) = loopbackSocket()
    return (FileDescriptor(rawValue: o.adopt(fd)), port)
}

/// Whether any process runs with `token` among its arguments.
func processRunning(withArgument token: String) -> Bool {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
    for pid in entries where Int(pid) != nil {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
        if data.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == token }) {
            return true
        }
    }
    return false
}

@Suite struct SocketActivationTests {
    /// The server checks the protocol itself (LISTEN_PID is its pid,
    /// LISTEN_FDS listening sockets from 3, their names, nothing else in
    /// /proc/self/fd), accepts on its socket and answers; stale LISTEN_*
    /// variables of the inherited environment are gone, a descriptor of
    /// this process opened without close-on-exec did not reach it.
    @Test func realServerChecksTheProtocolAndAnswers() throws {
        let o = Opened()
        let (http, port) = listeningSocket(o)
        let (admin, _) = listeningSocket(o)
        _ = o.open("/etc/hostname", cloexec: false)     // must not leak
        let devnull = FileDescriptor(rawValue: o.open("/dev/null", O_RDWR))
        var config = Program.Configuration(
            .path(FilePath(python)),
            arguments: .socketActivation([activationServer, "--flag"],
                                         sockets: ["http": http, "admin": admin],
                                         standardIO: (devnull, devnull, .standardError)))
        config.environment = .inherit.updating(["LISTEN_PID": "1", "LISTEN_FDNAMES": "stale",
                                                "LISTEN_PIDFDID": "7", "LISTEN_PORT": "kept",
                                                "KEPT": "yes"])
        let child = try Program.spawn(config)
        let pid = child.pid
        let line = askLoopback(port: port)
        if line == nil { try? child.send(signal: .kill) }
        #expect(try child.wait() == .exited(0))
        let a = jsonObject(line)
        #expect(a["failed"] as? [String] == [], "\(line ?? "no answer")")
        #expect(a["pid"] as? Int == Int(pid))
        #expect(a["listen_pid"] as? String == "\(pid)")
        #expect(a["listen_fds"] as? Int == 2)
        #expect(a["names"] as? [String] == ["http", "admin"])
        #expect(a["argv"] as? [String] == ["--flag"])
        #expect(a["environment"] as? [String] == ["LISTEN_FDNAMES", "LISTEN_FDS", "LISTEN_PID",
                                                   "LISTEN_PORT"])
        #expect(a["fds"] as? [String: String] == [
            "0": "chr", "1": "chr", "2": (a["fds"] as? [String: String])?["2"] ?? "?",
            "3": "socket inet stream listening", "4": "socket inet stream listening",
        ])
        #expect(a["extra"] as? [Int] == [])
    }

    /// The exact table and environment, by the probe: 0-2 as given, the
    /// sockets at 3 and 4 (the same open files), close-on-exec cleared,
    /// and the environment the configuration's without the protocol's
    /// variables (a LISTEN_X of its own stays), then
    /// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (the probe's own pid).
    @Test func probeSeesExactlyTheProtocol() async throws {
        let o = Opened()
        let m = o.memfd()
        let (s1, _) = listeningSocket(o)
        let (s2, _) = listeningSocket(o)
        let null = FileDescriptor(rawValue: o.open("/dev/null"))
        let config = Program.Configuration(
            .path(FilePath(Probe.path)),
            arguments: .socketActivated(["report", "1"], sockets: [
                ListeningSocket(name: "a b", descriptor: s1),
                ListeningSocket(name: "", descriptor: s2),
            ], standardIO: (null, FileDescriptor(rawValue: m), null)),
            environment: .custom(["A=1", "LISTEN_FDS=9", "LISTEN_X=y", "B=2"]))
        let (pid, r) = try await runConfigured(config, memfd: m)
        expectTable(r, sources: [FileID(fd: null.rawValue), FileID(fd: m), FileID(fd: null.rawValue),
                                 FileID(fd: s1.rawValue), FileID(fd: s2.rawValue)])
        // LISTEN_X is not the protocol's: it stays, in its place.
        #expect(r.env.map(text) == ["A=1", "LISTEN_X=y", "B=2", "LISTEN_FDS=2",
                                    "LISTEN_FDNAMES=a b:", "LISTEN_PID=\(pid)"])
        #expect(r.args.map(text) == ["fdremap-probe", "report", "1"])
    }

    /// PROGRAM_LISTEN_PID from C: every LISTEN_PID entry of pa_envp is
    /// left out and one with the child's pid ends the environment; the
    /// caller's strings are not written.
    @Test func listenPIDFromC() throws {
        let o = Opened()
        let m = o.memfd()
        let exe = o.open(Probe.path)
        let entries = ["LISTEN_PID=1", "A=1", "LISTEN_PID=22", "LISTEN_PIDX=3"]
        var storage = entries.map { strdup($0) }
        defer { storage.forEach { free($0) } }
        storage.append(nil)
        let words = ["fdremap-probe", "report", "0"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var pid: pid_t = -1
        let error = storage.withUnsafeMutableBufferPointer { envp in
            (argv + [nil]).withUnsafeBufferPointer { av in
                var attr = program_attr()
                attr.pa_envp = UnsafePointer(envp.baseAddress)
                attr.pa_argv = av.baseAddress
                attr.pa_flags = UInt32(PROGRAM_LISTEN_PID)
                return [m].withUnsafeBufferPointer { fds in
                    program_spawn_raw(exe, nil, 0, fds.baseAddress, 1, &attr, &pid)
                }
            }
        }
        #expect(error == 0)
        guard error == 0 else { return }
        #expect(exitCode(reap(pid)) == 0)
        let r = ProbeReport(Probe.read(m))
        #expect(r.pid == pid)
        #expect(r.env.map(text) == ["A=1", "LISTEN_PIDX=3", "LISTEN_PID=\(pid)"])
        #expect(storage.dropLast().map { String(cString: $0!) } == entries)
    }

    /// Names as sd_listen_fds_with_names(3) allows them: at most 255
    /// printable ASCII characters, no ':'; empty and spaces allowed.
    @Test(arguments: [
        ("", true), ("http", true), ("a b~!", true), (String(repeating: "x", count: 255), true),
        (String(repeating: "x", count: 256), false), ("a:b", false), ("tab\t", false),
        ("nl\n", false), ("é", false), ("del\u{7f}", false),
    ])
    func names(_ name: String, _ valid: Bool) {
        #expect(ListeningSocket.isValid(name: name) == valid)
    }

    /// Bad names (EINVAL), a socket that is not open (EBADF), arguments
    /// that cannot travel (E2BIG, also from checkArguments): each throws
    /// before anything starts, with this process's table as it was and no
    /// child, running or zombie (an exit test: a process of its own).
    @Test func errorsStartNothingAndLeaveNothing() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let (s, _) = listeningSocket(o)
            let closed = o.dup(s.rawValue, atLeast: 500)
            o.close(closed)
            let token = "fdremap-activation-\(getpid())"
            let before = tableSnapshot()
            func config(_ sockets: [ListeningSocket], _ args: [String] = []) -> Program.Configuration {
                Program.Configuration(.path(FilePath(python)),
                                      arguments: .socketActivated([activationServer, token] + args,
                                                                  sockets: sockets,
                                                                  standardIO: (.standardInput,
                                                                               .standardOutput,
                                                                               .standardError)),
                                      environment: .inherit)
            }
            let cases: [(Errno, Program.Configuration)] = [
                (.invalidArgument, config([.init(name: "a:b", descriptor: s)])),
                (.invalidArgument, config([.init(name: "ok", descriptor: s),
                                           .init(name: "\u{1b}[31m", descriptor: s)])),
                (.invalidArgument, config([.init(name: String(repeating: "n", count: 256), descriptor: s)])),
                (.badFileDescriptor, config([.init(name: "http", descriptor: s),
                                             .init(name: "gone", descriptor: FileDescriptor(rawValue: closed))])),
                (.argListTooLong, config([.init(name: "http", descriptor: s)],
                                         [String(repeating: "x", count: 200_000)])),
            ]
            for (i, (want, c)) in cases.enumerated() {
                do throws(Errno) {
                    let child = try Program.spawn(c)
                    Issue.record("case \(i) started \(child.pid)")
                    try? child.send(signal: .kill)
                    _ = try? child.wait()
                } catch {
                    #expect(error == want, "case \(i)")
                }
            }
            // The same errors from the check that starts nothing.
            #expect(throws: Errno.invalidArgument) { try Program.checkArguments(cases[0].1) }
            #expect(throws: Errno.argListTooLong) { try Program.checkArguments(cases[4].1) }
            #expect(throws: Never.self) { try Program.checkArguments(config([.init(name: "http", descriptor: s)])) }
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())
            #expect(!processRunning(withArgument: token))
        }
    }
}
