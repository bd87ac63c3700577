// fdrun as a real process: each tag reaches a real program (fdrun-probe),
// which reports exactly the descriptors it has; errors, the dry run, the
// environment, exit statuses, and a real TCP exchange with the example
// server.
import FDRemap
import FDRunConfig
import Foundation
import Glibc
import Testing

/// The probe's report of running `config` (a file in `dir`) through fdrun,
/// with the report on fdrun's descriptor 3 (a pipe of the test).
func runProbe(_ config: String, in dir: TempDir, options: [String] = [],
              sourceLocation: Testing.SourceLocation = #_sourceLocation) -> (Run, ProbeReport) {
    let path = dir.write("cfg.yaml", config)
    let report = makePipe()
    let launched = Launched(options + [probePath, path], extra: [report.write])
    close(report.write)
    let run = launched.finish()
    var text: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(report.read, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        text += buf[0..<n]
    }
    close(report.read)
    #expect(run.ending == .exited(0), "fdrun: \(run.ending)\n\(run.stderr)",
            sourceLocation: sourceLocation)
    return (run, ProbeReport(String(decoding: text, as: UTF8.self)))
}

/// Whether this machine can bind a socket to ::1.
let ipv6Loopback: Bool = {
    let s = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { return false }
    defer { close(s) }
    var sin6 = sockaddr_in6()
    sin6.sin6_family = sa_family_t(AF_INET6)
    sin6.sin6_addr.__in6_u.__u6_addr8.15 = 1
    return withUnsafePointer(to: &sin6) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}()

/// A listening Unix socket of the test at path.
func listeningUnixSocket(_ path: String) -> Int32 {
    let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var sun = sockaddr_un()
    sun.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &sun.sun_path) { raw in
        for (i, b) in path.utf8.enumerated() { raw[i] = b }
    }
    let ok = withUnsafePointer(to: &sun) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
        }
    }
    precondition(ok && listen(s, 4) == 0 && fcntl(s, F_SETFD, FD_CLOEXEC) == 0)
    return s
}

@Suite struct EndToEndTests {
    /// Every tag at once. The program has exactly the descriptors the
    /// configuration names, 0 to 11 in order of first appearance, each
    /// the file, socket or descriptor it should be, and the tree as
    /// planned.
    @Test func everyTag() throws {
        let dir = TempDir()
        let d = dir.path
        dir.write("f.txt", "contents\n")
        let peer = listeningUnixSocket(d + "/listen.sock")
        defer { close(peer) }
        let config = """
            %TAG ! tag:nuxi.nl,2015:cloudabi/
            ---
            report: !fd 3
            in: !fd stdin
            file: !file {path: \(d)/f.txt}
            dir: !file {path: \(d)}
            log: !file {path: \(d)/out.log, mode: append}
            tcp: !socket {bind: "127.0.0.1:0"}
            udp: !socket {bind: "127.0.0.1:0", type: dgram}
            us: !socket {bind: \(d)/s.sock}
            ud: !socket {bind: \(d)/d.sock, type: dgram}
            sp: !socket {bind: \(d)/p.sock, type: seqpacket}
            uc: !socket {connect: \(d)/listen.sock}
            exe: !executable
            again: [!fd 3, !executable, !fd stdin]
            n: [1, two, 3.0]
            """
        let (_, r) = runProbe(config, in: dir)
        #expect(r.fds.keys.sorted() == Array(0...11), "\(r.fds.keys.sorted())")
        guard r.fds.count == 12 else { return }
        #expect(r.fds[0]!.kind == "fifo" && r.fds[0]!.accmode == O_WRONLY)
        #expect(r.fds[1]!.kind == "fifo" && r.fds[1]!.accmode == O_RDONLY)
        #expect(r.fds[2]!.kind == "reg" && r.fds[2]!.id == FileID(path: d + "/f.txt"))
        #expect(r.fds[2]!.accmode == O_RDONLY)
        #expect(r.fds[3]!.kind == "dir" && r.fds[3]!.id == FileID(path: d))
        #expect(r.fds[4]!.kind == "reg" && r.fds[4]!.accmode == O_WRONLY)
        #expect(r.fds[4]!.id == FileID(path: d + "/out.log"))
        let tcp = r.fds[5]!.socket
        #expect(Array(tcp.prefix(3)) == ["inet", "stream", "1"] && tcp[3].hasPrefix("127.0.0.1:"))
        #expect(tcp[3] != "127.0.0.1:0" && tcp[4] == "-")
        let udp = r.fds[6]!.socket
        #expect(Array(udp.prefix(3)) == ["inet", "dgram", "0"] && udp[3] != "127.0.0.1:0")
        #expect(r.fds[7]!.socket == ["unix", "stream", "1", d + "/s.sock", "-"])
        #expect(r.fds[8]!.socket == ["unix", "dgram", "0", d + "/d.sock", "-"])
        #expect(r.fds[9]!.socket == ["unix", "seqpacket", "1", d + "/p.sock", "-"])
        #expect(r.fds[10]!.socket == ["unix", "stream", "0", "-", d + "/listen.sock"])
        #expect(r.fds[11]!.kind == "reg" && r.fds[11]!.id == FileID(path: probePath))
        #expect(r.yaml == (try expectedYAML(config)))
        // The connection the program was handed is real.
        let accepted = accept(peer, nil, nil)
        #expect(accepted >= 0)
        if accepted >= 0 { close(accepted) }
    }

    /// The same configuration with the %TAG directive, without it, and
    /// with the directive's own handle spelled out.
    @Test func tagDirectiveOrNot() throws {
        let body = "report: !fd 3\nerr: !fd stderr\nx: [1, !file {path: /}]\n"
        let dir = TempDir()
        let plain = runProbe(body, in: dir).1
        let tagged = runProbe("%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n" + body, in: dir).1
        let verbatim = runProbe(body.replacingOccurrences(of: "!fd", with: "!<tag:nuxi.nl,2015:cloudabi/fd>"),
                                in: dir).1
        #expect(plain.fds.keys.sorted() == [0, 1, 2])
        #expect(plain.yaml == (try expectedYAML(body)))
        #expect(tagged.yaml == plain.yaml && verbatim.yaml == plain.yaml)
        #expect(tagged.fds.keys.sorted() == [0, 1, 2] && verbatim.fds.keys.sorted() == [0, 1, 2])
    }

    /// Untagged scalars by the core schema, through a real program.
    @Test func coreSchemaScalars() throws {
        let scalars = CoreSchemaTests.table.map(\.0).filter { !$0.contains("\n") && !$0.isEmpty }
        let config = "report: !fd 3\nvalues:\n" + scalars.map { "  - " + $0 }.joined(separator: "\n")
        let (_, r) = runProbe(config, in: TempDir())
        let expected: Argdata = ["report": fd(0),
                                 "values": .seq(CoreSchemaTests.table.filter { scalars.contains($0.0) }
                                     .map { $0.0 == "a:" ? ["a": nil] : $0.1 })]
        #expect(r.yaml == expected.yaml())
        #expect(r.fds.keys.sorted() == [0])
    }

    @Test(.enabled(if: ipv6Loopback, "::1 cannot be bound on this machine"))
    func ipv6() {
        let (_, r) = runProbe("report: !fd 3\ns: !socket {bind: \"[::1]:0\"}\n"
                                + "d: !socket {bind: \"[::1]:0\", type: dgram}\n", in: TempDir())
        #expect(r.fds.keys.sorted() == [0, 1, 2])
        let s = r.fds[1]?.socket ?? []
        #expect(Array(s.prefix(3)) == ["inet6", "stream", "1"] && s.count == 5 && s[3].hasPrefix("[::1]:"))
        #expect(Array((r.fds[2]?.socket ?? []).prefix(3)) == ["inet6", "dgram", "0"])
    }

    /// --env gives exactly those variables; without it the environment is
    /// empty.
    @Test func environment() {
        let dir = TempDir()
        let (_, with) = runProbe("report: !fd 3", in: dir, options: ["--env", "A=1", "--env", "B=x=y", "--env", "C="])
        #expect(with.env == ["A=1", "B=x=y", "C="])
        let (_, without) = runProbe("report: !fd 3", in: dir)
        #expect(without.env == [])
    }

    /// fdrun becomes the program: its status is the program's, and a
    /// program killed by a signal is killed by that signal.
    @Test(arguments: [("exit: 0", Ending.exited(0)), ("exit: 3", .exited(3)),
                      ("exit: 255", .exited(255)), ("signal: 9", .signaled(9)),
                      ("signal: 15", .signaled(15)), ("signal: 6", .signaled(6))])
    func status(_ line: String, _ ending: Ending) {
        let run = fdrun([probePath], stdin: "report: !fd stderr\n" + line)
        #expect(run.ending == ending, "\(run.stderr)")
    }

    /// A configuration that names no descriptor: the program has none at
    /// all, not even stdin, stdout or stderr (the probe, with nowhere to
    /// report, exits with 100 + how many it has).
    @Test func noDescriptors() {
        let run = fdrun([probePath], stdin: "{exit: 7, list: [1, 2]}")
        #expect(run.ending == .exited(100))
        #expect(run.stdout.isEmpty && run.stderr.isEmpty)
        let one = fdrun([probePath], stdin: "{exit: 7, x: !fd stderr}")
        #expect(one.ending == .exited(101))
    }

    /// The `#!` policy: a script gets one extra descriptor, number n after
    /// the n passed ones, which is its own file (an ELF program gets none:
    /// see everyTag).
    @Test func scriptGetsItsOwnFileNext() {
        let dir = TempDir()
        let script = dir.write("s.sh", """
            #!/bin/sh
            id=$(stat -L -c '%d %i' /proc/$$/fd/1)
            echo "$id" >&0

            """)
        chmod(script, 0o755)
        let run = fdrun([script], stdin: "- !fd stdout\n")
        #expect(run.ending == .exited(0), "\(run.stderr)")
        let id = FileID(path: script)
        #expect(run.stdout == "\(id.dev) \(id.ino)\n")
    }

    /// A real exchange: the example server accepts on the socket it was
    /// handed (bound to port 0; it logs the port to the descriptor it was
    /// handed) and answers one request over TCP.
    @Test func httpExchange() throws {
        let dir = TempDir()
        let path = dir.write("hello.yaml", """
            socket: !socket {bind: "127.0.0.1:0"}
            log: !fd 3
            message: "Hello, test.\\n"
            requests: 1
            """)
        let log = makePipe()
        let server = Launched([product("hello-server"), path], extra: [log.write])
        close(log.write)
        defer { close(log.read) }
        let first = readLine(log.read, timeout: 30)
        let port = first.flatMap { $0.split(separator: ":").last.flatMap { UInt16($0) } }
        try #require(port != nil, "no port in \(String(describing: first))")
        let response = try httpGet(port: port!, path: "/hello")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\nHello, test.\n"))
        let run = server.finish(timeout: 30)
        #expect(run.ending == .exited(0), "\(run.stderr)")
        #expect(readLine(log.read, timeout: 5) == "hello-server: GET /hello HTTP/1.1 -> 200 (1 served)")
    }
}

/// One line from fd, waiting at most timeout seconds; nil at its end.
func readLine(_ fd: Int32, timeout: Double) -> String? {
    let deadline = Date().addingTimeInterval(timeout)
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while true {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
        guard left > 0, poll(&p, 1, left) > 0, read(fd, &byte, 1) == 1 else {
            return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
        }
        if byte == 10 { return String(decoding: line, as: UTF8.self) }
        line.append(byte)
    }
}

struct NetworkError: Error {
    var step: String
    var errno: Int32
}

/// GET path from 127.0.0.1:port; the whole response (the server closes).
func httpGet(port: UInt16, path: String) throws -> String {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard s >= 0 else { throw NetworkError(step: "socket", errno: errno) }
    defer { close(s) }
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &sin) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else { throw NetworkError(step: "connect", errno: errno) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ write(s, $0.baseAddress, $0.count) }) == request.count else {
        throw NetworkError(step: "write", errno: errno)
    }
    var response: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(s, $0.baseAddress, $0.count) }
        if n < 0 { throw NetworkError(step: "read", errno: errno) }
        if n == 0 { break }
        response += buf[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
}
