// Shared helpers of the launcher's tests: descriptors the tests own, the
// probe program and its reports, and snapshots of this process's table.
import CFDRemapTestHooks
import CFDRemapHost
import CFDRemapKernel
import Glibc
import Synchronization
import Testing

/// The identity of an open file: what the child's descriptor must share
/// with the source it was given.
struct FileID: Hashable, CustomStringConvertible {
    var dev: UInt64
    var ino: UInt64
    var description: String { "\(dev):\(ino)" }

    init(dev: UInt64, ino: UInt64) {
        self.dev = dev
        self.ino = ino
    }

    /// The identity of this process's descriptor `fd`, nil when it is closed.
    init?(fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        self.init(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }
}

/// Descriptors a test opens, each with a distinct file; closed at the end
/// (deinit), so no test leaves one behind.
final class Opened {
    private(set) var fds: [Int32] = []

    /// Adopts `fd` (must be open).
    @discardableResult
    func adopt(_ fd: Int32, sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
        #expect(fd >= 0, "open failed: errno \(errno)", sourceLocation: sourceLocation)
        if fd >= 0 { fds.append(fd) }
        return fd
    }

    /// A new unlinked file (an inode of its own), read-write,
    /// close-on-exec.
    func memfd() -> Int32 {
        var template = Array("/tmp/fdremap-test-XXXXXX".utf8CString)
        let fd = fdr_test_mkstemp_cloexec(&template)
        unlink(template)
        return adopt(fd)
    }

    /// A path opened with `flags` (O_CLOEXEC added unless `cloexec` is false).
    func open(_ path: String, _ flags: Int32 = O_RDONLY, mode: mode_t = 0o600,
              cloexec: Bool = true) -> Int32 {
        adopt(Glibc.open(path, flags | (cloexec ? O_CLOEXEC : 0), mode))
    }

    /// A copy of `fd` at the lowest free number at or above `minimum`.
    func dup(_ fd: Int32, atLeast minimum: Int32, cloexec: Bool = true) -> Int32 {
        adopt(fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, minimum))
    }

    /// A new file under /tmp with `contents` and `mode`, opened with
    /// `flags` and unlinked. Written through a close-on-exec descriptor,
    /// so that programs other tests start meanwhile do not keep it open
    /// for writing (which makes executing it ETXTBSY).
    func tempFile(_ contents: [UInt8], mode: mode_t,
                  flags: Int32 = O_RDONLY) -> (fd: Int32, path: String) {
        var template = Array("/tmp/fdremap-test-XXXXXX".utf8CString)
        let w = fdr_test_mkstemp_cloexec(&template)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) },
                          as: UTF8.self)
        _ = contents.withUnsafeBytes { write(w, $0.baseAddress, $0.count) }
        fchmod(w, mode)
        close(w)
        let fd = open(path, flags)
        unlink(path)
        return (fd, path)
    }

    /// Closes `fd` now (it is no longer closed at the end).
    func close(_ fd: Int32) {
        fds.removeAll { $0 == fd }
        _ = Glibc.close(fd)
    }

    deinit {
        for fd in fds { Glibc.close(fd) }
    }
}

/// The probe's report (see Tests/Probes/fdremap-probe/probe.c).
struct ProbeReport {
    struct FD: Equatable {
        var cloexec: Bool
        var id: FileID
        var accmode: Int
        var path: String
    }

    var pid: Int32 = -1
    var args: [[UInt8]] = []
    var env: [[UInt8]] = []
    var fds: [Int32: FD] = [:]
    var blocked: UInt64 = 0
    var ignored: UInt64 = 0
    var caught: UInt64 = 0
    /// Lines that are not part of a report ("spawned ...", "execfail ...").
    var other: [[Substring]] = []
    var ended = false
    var text: String

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") {
            let w = line.split(separator: " ", maxSplits: 6,
                               omittingEmptySubsequences: false)
            switch w.first {
            case "pid": pid = Int32(w[1]) ?? -1
            case "arg": args.append(Self.unhex(w.count > 2 ? w[2] : ""))
            case "env": env.append(Self.unhex(w.count > 2 ? w[2] : ""))
            case "fd" where w.count >= 6:
                fds[Int32(w[1])!] = FD(
                    cloexec: w[2] == "1",
                    id: FileID(dev: UInt64(w[3])!, ino: UInt64(w[4])!),
                    accmode: Int(w[5])!,
                    path: w.count > 6 ? String(w[6]) : "")
            case "sigblocked": blocked = UInt64(w[1], radix: 16) ?? 0
            case "sigignored": ignored = UInt64(w[1], radix: 16) ?? 0
            case "sigcaught": caught = UInt64(w[1], radix: 16) ?? 0
            case "end": ended = true
            default: other.append(w)
            }
        }
    }

    static func unhex(_ s: Substring) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex, let j = s.index(i, offsetBy: 2, limitedBy: s.endIndex) {
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// The other lines that start with `word`.
    func lines(_ word: String) -> [[Substring]] {
        other.filter { $0.first.map(String.init) == word }
    }
}

enum Probe {
    /// The probe sits beside the test bundle among the build products.
    static let path: String = {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        precondition(n > 0)
        let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) },
                         as: UTF8.self)
        return exe[..<exe.lastIndex(of: "/")!] + "/fdremap-probe"
    }()

    /// Everything written to `fd` (a memfd or file) from its start.
    static func read(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var off: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
            if n <= 0 { break }
            bytes += buf[0..<n]
            off += off_t(n)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// NUL-joined strings: the data that arrives as argv[1...].
func data(_ words: [String]) -> [UInt8] {
    Array(words.joined(separator: "\0").utf8)
}

/// waitpid() for `pid`, retried on EINTR; the raw status.
@discardableResult
func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return status
}

func exitCode(_ status: Int32) -> Int32? {
    (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
}

/// The result of one program_spawn_raw() call.
struct Spawned {
    var error: Int32
    var pid: pid_t = -1
    var closedBy: Int32 = 0
}

/// program_spawn_raw() with Swift arrays; nil name and env mean defaults;
/// `withPidfd` asks for the child's pidfd (closed here: the launch takes
/// the path that makes one). Checks that the call leaves no memory of the
/// C layers allocated.
func spawnRaw(_ execfd: Int32, _ bytes: [UInt8], _ fds: [Int32],
              name: String? = nil, env: [String]? = nil, flags: UInt32 = 0,
              withPidfd: Bool = false,
              sourceLocation: SourceLocation = #_sourceLocation) -> Spawned {
    var closedBy: Int32 = 0, pid: pid_t = -1, error: Int32 = 0, pidfd: Int32 = -1
    defer { if pidfd >= 0 { close(pidfd) } }
    let cenv: [UnsafeMutablePointer<CChar>?]? = env.map { $0.map { strdup($0) } + [nil] }
    defer { cenv?.forEach { free($0) } }
    let cname = name.flatMap { strdup($0) }
    defer { free(cname) }
    let before = fdr_mem_inuse_thread()
    withUnsafeMutablePointer(to: &closedBy) { closedByp in
      withUnsafeMutablePointer(to: &pidfd) { pidfdp in
        var attr = program_attr(pa_name: cname.map { UnsafePointer($0) },
                                pa_envp: nil, pa_flags: flags,
                                pa_closedby: closedByp,
                                pa_pidfd: withPidfd ? pidfdp : nil,
            pa_sigmask: nil, pa_argv: nil, pa_cwd: nil, pa_cwdfd: 0, pa_pgroup: 0)
        let run = { (envp: UnsafePointer<UnsafeMutablePointer<CChar>?>?) in
            attr.pa_envp = envp
            // ETXTBSY is Linux's answer while any process holds the file
            // open for writing: a child that another test is starting at
            // this instant holds a copy of this process's table, the
            // writer of a script just written included, until it closes
            // the rest. It passes in microseconds; no test expects it.
            for attempt in 0..<100 {
                error = bytes.withUnsafeBytes { b in
                    fds.withUnsafeBufferPointer { f in
                        program_spawn_raw(execfd, b.baseAddress, b.count,
                                          f.baseAddress, f.count, &attr, &pid)
                    }
                }
                guard error == ETXTBSY, attempt < 99 else { break }
                usleep(10_000)
            }
        }
        if let cenv { cenv.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
      }
    }
    #expect(fdr_mem_inuse_thread() == before, "C memory left allocated",
            sourceLocation: sourceLocation)
    return Spawned(error: error, pid: pid, closedBy: closedBy)
}

/// Spawns the probe with `fds`, its command in `$FDREMAP_PROBE` or in
/// the data, waits, and parses what it wrote to `report` (a memfd of this
/// process that must be among `fds`). The probe is opened for the launch
/// unless `execfd` is a descriptor of it already.
func runProbe(_ fds: [Int32], report: Int32, command: [String]? = nil,
              bytes: [UInt8]? = nil, env: [String] = [], name: String? = nil,
              flags: UInt32 = 0, checkPid: Bool = true, execfd: Int32? = nil,
              sourceLocation: SourceLocation = #_sourceLocation) -> (Spawned, ProbeReport) {
    let probe = execfd ?? Glibc.open(Probe.path, O_RDONLY | O_CLOEXEC)
    defer { if execfd == nil { close(probe) } }
    let k = fds.firstIndex(of: report)!
    var env = env
    let payload: [UInt8]
    if let bytes {
        env.append("FDREMAP_PROBE=" + (command ?? ["report", "\(k)"]).joined(separator: " "))
        payload = bytes
    } else {
        payload = data(command ?? ["report", "\(k)"])
    }
    let s = spawnRaw(probe, payload, fds, name: name, env: env, flags: flags)
    #expect(s.error == 0, "spawn failed: \(String(cString: strerror(s.error)))",
            sourceLocation: sourceLocation)
    guard s.error == 0 else { return (s, ProbeReport("")) }
    let status = reap(s.pid)
    #expect(exitCode(status) == 0, "probe status \(status)", sourceLocation: sourceLocation)
    let r = ProbeReport(Probe.read(report))
    let isReport = ["report", "spawn", "exec"].contains((command ?? ["report"])[0])
    #expect(r.ended || !isReport, "incomplete report:\n\(r.text)", sourceLocation: sourceLocation)
    if checkPid && isReport {
        #expect(r.pid == s.pid, sourceLocation: sourceLocation)
    }
    return (s, r)
}

/// The child's table is exactly descriptors 0 ..< sources.count, each the
/// file of the source, none close-on-exec.
func expectTable(_ r: ProbeReport, sources: [FileID?],
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard r.ended else {
        Issue.record("no report from the child:\n\(r.text)", sourceLocation: sourceLocation)
        return
    }
    #expect(r.fds.keys.sorted() == Array(0..<Int32(sources.count)),
            "child table:\n\(r.text)", sourceLocation: sourceLocation)
    for (i, id) in sources.enumerated() {
        #expect(r.fds[Int32(i)]?.id == id, "descriptor \(i)", sourceLocation: sourceLocation)
        #expect(r.fds[Int32(i)]?.cloexec == false, "descriptor \(i) close-on-exec",
                sourceLocation: sourceLocation)
    }
}

/// /proc/self/fd, opened once (at 900 or above, out of the way of the
/// numbers tests use, and below 1023 so that tests can still go past the
/// highest descriptor with a list of at most 1024) and rewound for each
/// snapshot, so that a snapshot needs no descriptor (a test may have
/// filled the table).
private let procFD: Mutex<UInt> = {
    let fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    let high = fcntl(fd, F_DUPFD_CLOEXEC, 900)
    close(fd)
    return Mutex(UInt(bitPattern: fdopendir(high)))
}()

/// This process's open descriptors and their files, from /proc/self/fd.
/// The Swift runtime's and the test library's own threads open and close
/// eventfd, timerfd, epoll and /proc/<pid>/stat descriptors at any time;
/// the launcher never makes an anonymous inode or opens a stat file in
/// the caller, so those are left out, and so are descriptors that vanish
/// while they are listed.
func tableSnapshot() -> [Int32: String] {
    procFD.withLock { raw in
        var table: [Int32: String] = [:]
        guard let dir = OpaquePointer(bitPattern: raw) else {
            Issue.record("/proc/self/fd cannot be read")
            return table
        }
        rewinddir(dir)
        let own = dirfd(dir)
        while let e = readdir(dir) {
            // d_name is as long as the name, not 256 bytes: read to its NUL.
            let name = String(cString: UnsafeRawPointer(e)
                .advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
                .assumingMemoryBound(to: CChar.self))
            guard let fd = Int32(name), fd != own else { continue }
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
            let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("anon_inode:") ||
                (target.hasPrefix("/proc/") && target.hasSuffix("/stat")) { continue }
            table[fd] = target
        }
        return table
    }
}

/// Whether this process has no child at all (none running, no zombie).
///
/// Only for exit tests (a process of their own): in the main test process
/// `waitpid(-1)` would reap the children of exit tests running in
/// parallel, and Swift Testing would wait for them forever.
func hasNoChildren() -> Bool {
    var status: Int32 = 0
    return waitpid(-1, &status, WNOHANG | __WALL) == -1 && errno == ECHILD
}

/// Raises the soft RLIMIT_NOFILE to at least `n` (up to the hard limit).
func raiseNoFile(_ n: rlim_t) {
    var rl = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    if rl.rlim_cur < n {
        rl.rlim_cur = min(n, rl.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
    }
}
