// Running fdrun as a real process, and reading what fdrun-probe reports.
//
// fdrun is started with the project's own launcher (program_spawn_raw),
// so its descriptor table is exactly what a test says: 0, 1 and 2 are
// pipes of the test (or what it passes), then `extra`. Every process is
// reaped on every path: `finish` waits with a deadline and kills on
// timeout, and a Launched that goes away unfinished kills and reaps.
import CFDRemapHost
import FDRunConfig
import Foundation
import Glibc
import Testing

/// The package's root folder (this file is Tests/FDRunTests/Support.swift).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// A program built beside the test bundle.
func product(_ name: String) -> String {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    precondition(n > 0)
    let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return exe[..<exe.lastIndex(of: "/")!] + "/" + name
}

let fdrunPath = product("fdrun")
let probePath = product("fdrun-probe")

/// How a process ended.
enum Ending: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    case timedOut
    /// waitpid() failed: someone else reaped the process.
    case lost(Int32)

    init(status: Int32) {
        self = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }

    var description: String {
        switch self {
        case .exited(let c): return "exit \(c)"
        case .signaled(let s): return "signal \(s)"
        case .timedOut: return "timed out (killed)"
        case .lost(let e): return "status lost (waitpid: errno \(e))"
        }
    }
}

/// What a finished run left.
struct Run {
    var ending: Ending
    var stdout: String
    var stderr: String
}

/// A pipe, both ends close-on-exec.
func makePipe() -> (read: Int32, write: Int32) {
    var p: [Int32] = [-1, -1]
    precondition(pipe(&p) == 0)
    // Other tests' children are started by a launcher that closes what
    // it does not pass, so the window before FD_CLOEXEC leaks nothing.
    for fd in p { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (p[0], p[1])
}

/// fdrun (or `executable`) started with `arguments`; the test's ends of
/// its standard pipes.
final class Launched {
    let pid: pid_t
    private let pidfd: Int32
    private var stdinW: Int32
    private var stdoutR: Int32
    private var stderrR: Int32
    private var reaped = false

    /// Starts it. `extra` become its descriptors 3, 4, ...; the caller
    /// keeps (and closes) its own copies.
    init(_ arguments: [String], stdin: [UInt8] = [], extra: [Int32] = [],
         executable: String = fdrunPath) {
        let i = makePipe(), o = makePipe(), e = makePipe()
        let exe = open(executable, O_RDONLY | O_CLOEXEC)
        precondition(exe >= 0, "\(executable): errno \(errno)")
        let data = Array(arguments.joined(separator: "\0").utf8)
        let fds = [i.read, o.write, e.write] + extra
        var pid: pid_t = -1
        var pidfd: Int32 = -1
        let error = "fdrun".withCString { name in
            withUnsafeMutablePointer(to: &pidfd) { pidfdp in
                var attr = program_attr(pa_name: name, pa_envp: nil, pa_flags: 0,
                                        pa_closedby: nil, pa_pidfd: pidfdp,
            pa_sigmask: nil, pa_argv: nil, pa_cwd: nil, pa_cwdfd: 0, pa_pgroup: 0)
                return data.withUnsafeBytes { d in
                    fds.withUnsafeBufferPointer { f in
                        program_spawn_raw(exe, d.baseAddress, d.count, f.baseAddress,
                                          f.count, &attr, &pid)
                    }
                }
            }
        }
        for fd in [exe, i.read, o.write, e.write] { close(fd) }
        precondition(error == 0, "spawn: errno \(error)")
        self.pid = pid
        self.pidfd = pidfd
        stdinW = i.write
        stdoutR = o.read
        stderrR = e.read
        pendingInput = stdin
        // Input is written as the output is read, so neither side blocks.
        _ = fcntl(stdinW, F_SETFL, O_NONBLOCK)
    }

    private var pendingInput: [UInt8]

    /// Writes the input, reads both outputs to their end and reaps, all
    /// within `timeout` seconds; past it, kills and reaps.
    func finish(timeout: Double = 60) -> Run {
        let deadline = Date().addingTimeInterval(timeout)
        var out: [UInt8] = [], err: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var timedOut = false
        if pendingInput.isEmpty { closeInput() }
        while stdoutR >= 0 || stderrR >= 0 {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            if left == 0 { timedOut = true; break }
            var pfds = [pollfd(fd: stdoutR, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: stderrR, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: stdinW, events: Int16(POLLOUT), revents: 0)]
            guard poll(&pfds, 3, min(left, 1000)) >= 0 || errno == EINTR else { break }
            if stdinW >= 0 && pfds[2].revents != 0 {
                let n = pendingInput.withUnsafeBytes { write(stdinW, $0.baseAddress, $0.count) }
                if n > 0 { pendingInput.removeFirst(n) }
                if n < 0 && errno != EAGAIN || pendingInput.isEmpty { closeInput() }
            }
            for (k, fd) in [stdoutR, stderrR].enumerated() where fd >= 0 && pfds[k].revents != 0 {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if k == 0 { out += buf[0..<n] } else { err += buf[0..<n] }
                } else if n == 0 || errno != EINTR {
                    close(fd)
                    if k == 0 { stdoutR = -1 } else { stderrR = -1 }
                }
            }
        }
        closeInput()
        let ending = timedOut ? Ending.timedOut : wait(until: deadline)
        return Run(ending: ending, stdout: String(decoding: out, as: UTF8.self),
                   stderr: String(decoding: err, as: UTF8.self))
    }

    private func closeInput() {
        if stdinW >= 0 { close(stdinW) }
        stdinW = -1
    }

    /// Waits for the process until the deadline (through its pidfd), then
    /// kills it; always reaps.
    func wait(until deadline: Date) -> Ending {
        var pfd = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        var timedOut = false
        while true {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            let r = poll(&pfd, 1, left)
            if r > 0 { break }
            if r == 0 { timedOut = true; break }
            if errno != EINTR { break }
        }
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        var r: pid_t
        repeat { r = waitpid(pid, &status, 0) } while r == -1 && errno == EINTR
        reaped = true
        if r == -1 { return .lost(errno) }
        return timedOut ? .timedOut : Ending(status: status)
    }

    deinit {
        if !reaped {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        }
        for fd in [stdinW, stdoutR, stderrR, pidfd] where fd >= 0 { close(fd) }
    }
}

/// Runs fdrun to its end.
func fdrun(_ arguments: [String], stdin: String = "", extra: [Int32] = [],
           timeout: Double = 60) -> Run {
    Launched(arguments, stdin: Array(stdin.utf8), extra: extra).finish(timeout: timeout)
}

/// A fresh folder under /tmp for one test's files, removed at the end.
final class TempDir {
    let path: String

    init() {
        var template = Array("/tmp/fdrun-test-XXXXXX".utf8CString)
        precondition(mkdtemp(&template) != nil)
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes `text` to `name` in the folder; its path. Through a
    /// close-on-exec descriptor, so that no program another test starts
    /// meanwhile keeps it open for writing (which would make executing it
    /// ETXTBSY).
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot create \(p)")
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            precondition(n > 0 || errno == EINTR, "cannot write \(p)")
            done += max(n, 0)
        }
        close(fd)
        return p
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/" + name)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The identity of an open file.
struct FileID: Hashable {
    var dev: UInt64
    var ino: UInt64

    init(dev: UInt64, ino: UInt64) {
        self.dev = dev
        self.ino = ino
    }

    init(fd: Int32) {
        var st = stat()
        precondition(fstat(fd, &st) == 0)
        self.init(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    init(path: String) {
        var st = stat()
        precondition(stat(path, &st) == 0, path)
        self.init(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }
}

/// What fdrun-probe wrote (see Tests/Probes/fdrun-probe/fdrun_probe.c).
struct ProbeReport {
    struct Descriptor {
        var kind: String
        var accmode: Int
        var id: FileID
        /// family, type, listening, local, peer; empty unless a socket.
        var socket: [String]
    }

    var fds: [Int32: Descriptor] = [:]
    var env: [String] = []
    var yaml = ""

    init(_ text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        while let line = lines.popFirst() {
            if line == "argdata" {
                yaml = lines.joined(separator: "\n")
                break
            }
            let w = line.split(separator: " ").map(String.init)
            if w.first == "fd", w.count >= 6 {
                fds[Int32(w[1])!] = Descriptor(
                    kind: w[2], accmode: Int(w[3])!,
                    id: FileID(dev: UInt64(w[4])!, ino: UInt64(w[5])!),
                    socket: Array(w.dropFirst(6)))
            } else if w.first == "env" {
                env.append(String(line.dropFirst(4)))
            }
        }
    }
}

/// The YAML that the probe prints for the tree of `config` (its
/// descriptors numbered as the program sees them).
func expectedYAML(_ config: String) throws -> String {
    try Plan(parsing: Array(config.utf8), file: "x").argdata.yaml()
}

