// Launching with argdata: the Swift API (Program, ChildProcess,
// Argdata.current) and C's program_spawn, program_exec and
// program_getargdata, each checked on real children that read their tree
// back (the C probe through program_getargdata, the Swift probe through
// Argdata.current) and report it with their descriptor tables.
import CFDRemapTestHooks
import CArgdata
import CFDRemapHost
import CFDRemapKernel
import FDRemap
import Glibc
import SystemPackage
import Testing

extension Probe {
    /// The Swift probe, beside the C one.
    static let swiftPath: String =
        path[..<path.lastIndex(of: "/")!] + "/fdremap-swift-probe"
}

/// `tree` with each descriptor replaced by the identity of its file
/// (`id` of it), so that trees of two processes compare.
func identities(_ tree: Argdata, _ id: (FileDescriptor) -> FileID?) -> Argdata {
    switch tree {
    case .fd(let d):
        return .str("fd " + (id(d)?.description ?? "unavailable"))
    case .seq(let entries):
        return .seq(entries.map { identities($0, id) })
    case .map(let pairs):
        return .map(pairs.map { (key: identities($0.key, id), value: identities($0.value, id)) })
    default:
        return tree
    }
}

/// The tree a child reported ("argdata HEX" and "argfds N..."), with its
/// descriptors as the identities of the child's files (`table`).
func reportedTree(_ r: ProbeReport, table: [Int32: FileID],
                  sourceLocation: SourceLocation = #_sourceLocation) -> Argdata? {
    guard let hexLine = r.lines("argdata").first, let fdsLine = r.lines("argfds").first else {
        Issue.record("no tree in the report:\n\(r.text)", sourceLocation: sourceLocation)
        return nil
    }
    let bytes = ProbeReport.unhex(hexLine.count > 1 ? hexLine[1] : "")
    let fds = fdsLine.dropFirst().compactMap { Int32($0) }.map(FileDescriptor.init(rawValue:))
    guard let tree = try? Argdata(decoding: bytes, fds: fds) else {
        Issue.record("the reported tree does not decode", sourceLocation: sourceLocation)
        return nil
    }
    return identities(tree) { table[$0.rawValue] }
}

/// A tree of every kind of value, with `report` first and two more
/// descriptors, one of them twice.
func sampleTree(report: Int32, _ a: Int32, _ b: Int32) -> Argdata {
    .map([
        (key: .str("report"), value: .fd(FileDescriptor(rawValue: report))),
        (key: .str("int"), value: .int(-12_345_678_901_234)),
        (key: .str("big"), value: .int(Int128(1) << 100)),
        (key: .str("text"), value: .str("héllo\0wörld")),
        (key: .str("bytes"), value: .binary((0...255).map(UInt8.init) + [0, 0])),
        (key: .str("fds"), value: .seq([.fd(FileDescriptor(rawValue: a)),
                                        .fd(FileDescriptor(rawValue: b)),
                                        .fd(FileDescriptor(rawValue: a))])),
        (key: .str("nested"), value: .map([(key: .int(1),
                                            value: .seq([.null, .bool(true), .float(-0.0)]))])),
        (key: .str("when"), value: .timestamp(.init(seconds: 1_234_567_890, nanoseconds: 5))),
        (key: .str("empty"), value: .str("")),
    ])
}

/// This process's files as the probe's table maps them.
func table(_ r: ProbeReport) -> [Int32: FileID] {
    r.fds.mapValues(\.id)
}

@Suite struct ArgdataLaunchTests {
    @Test func swiftSpawnOfTheCProbe() throws {
        let o = Opened()
        let m = o.memfd(), a = o.memfd(), b = o.open("/dev/null")
        let tree = sampleTree(report: m, a, b)
        let before = fdr_mem_inuse_thread()
        let child = try Program.spawn(FilePath(Probe.path), argdata: tree)
        #expect(fdr_mem_inuse_thread() == before, "C memory left allocated")
        #expect(try child.wait() == .exited(0))
        let r = ProbeReport(Probe.read(m))
        // Descriptors in order of first appearance: report, a, b.
        expectTable(r, sources: [m, a, b].map { FileID(fd: $0) })
        #expect(r.args.first == Array("fdremap-probe".utf8))
        #expect(r.env.isEmpty)
        #expect(reportedTree(r, table: table(r)) == identities(tree) { FileID(fd: $0.rawValue) })
    }

    @Test func swiftSpawnOfTheSwiftProbe() throws {
        let o = Opened()
        let m = o.memfd(), a = o.memfd(), b = o.memfd()
        let tree = sampleTree(report: m, a, b)
        let child = try Program.spawn(FilePath(Probe.swiftPath), argdata: tree)
        #expect(try child.wait() == .exited(0))
        let r = ProbeReport(Probe.read(m))
        let files = Dictionary(uniqueKeysWithValues: r.lines("fd").map {
            (Int32($0[1])!, FileID(dev: UInt64($0[2])!, ino: UInt64($0[3])!))
        })
        #expect(files == [0: FileID(fd: m)!, 1: FileID(fd: a)!, 2: FileID(fd: b)!])
        #expect(reportedTree(r, table: files) == identities(tree) { FileID(fd: $0.rawValue) })
    }

    @Test func theSwiftChildSideOfNullAndOfGarbage() throws {
        let child = try Program.spawn(FilePath(Probe.swiftPath), argdata: .null)
        #expect(try child.wait() == .exited(42))
        // Arguments that are not argdata: an unknown tag.
        let o = Opened()
        let probe = o.open(Probe.swiftPath)
        let s = spawnRaw(probe, Array("garbage".utf8), [])
        #expect(s.error == 0)
        if s.error == 0 { #expect(exitCode(reap(s.pid)) == 100 + EINVAL) }
    }

    @Test func cProgramSpawnWithACTree() throws {
        let o = Opened()
        let m = o.memfd(), a = o.memfd()
        let probe = o.open(Probe.path)
        // {"report": m, "x": [a, "y", a]} built with the C library, which
        // keeps pointers to the strings: they must outlive the tree.
        let strings: [UnsafeMutablePointer<CChar>] = ["report", "x", "y"].map { (s: String) in strdup(s)! }
        defer { strings.forEach { free($0) } }
        let report = argdata_create_str_c(strings[0]), x = argdata_create_str_c(strings[1])
        let fdm = argdata_create_fd(m), fda = argdata_create_fd(a)
        let y = argdata_create_str_c(strings[2])
        let entries: [OpaquePointer?] = [fda, y, fda]
        let seq = entries.withUnsafeBufferPointer { argdata_create_seq($0.baseAddress, 3) }
        let keys: [OpaquePointer?] = [report, x], values: [OpaquePointer?] = [fdm, seq]
        let map = keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in argdata_create_map(k.baseAddress, v.baseAddress, 2) }
        }
        defer { [map, seq, y, fda, fdm, x, report].forEach { argdata_free($0) } }
        var pid: pid_t = -1
        try #require(program_spawn(probe, map, &pid) == 0)
        #expect(exitCode(reap(pid)) == 0)
        let r = ProbeReport(Probe.read(m))
        expectTable(r, sources: [FileID(fd: m), FileID(fd: a)])
        let want: Argdata = .map([
            (key: .str("report"), value: .fd(FileDescriptor(rawValue: m))),
            (key: .str("x"), value: .seq([.fd(FileDescriptor(rawValue: a)), .str("y"),
                                          .fd(FileDescriptor(rawValue: a))])),
        ])
        #expect(reportedTree(r, table: table(r)) == identities(want) { FileID(fd: $0.rawValue) })
        #expect(program_spawn(probe, nil, &pid) == EINVAL)
    }

    /// The C probe runs program_exec() of itself with a subtree: the same
    /// process, with exactly the subtree's descriptors.
    @Test func cProgramExecReplacesTheProbe() throws {
        let o = Opened()
        let m = o.memfd(), a = o.memfd(), stray = o.memfd()
        let probe = o.open(Probe.path)
        let args: Argdata = .map([(key: .str("x"), value: .fd(FileDescriptor(rawValue: a))),
                                  (key: .str("report"), value: .fd(FileDescriptor(rawValue: m)))])
        let tree: Argdata = .map([
            (key: .str("report"), value: .fd(FileDescriptor(rawValue: m))),
            (key: .str("exec"), value: .fd(FileDescriptor(rawValue: probe))),
            (key: .str("stray"), value: .fd(FileDescriptor(rawValue: stray))),
            (key: .str("args"), value: args),
        ])
        let child = try Program.spawn(FilePath(Probe.path), argdata: tree)
        let pid = child.pid
        #expect(try child.wait() == .exited(0))
        let r = ProbeReport(Probe.read(m))
        #expect(r.lines("error").isEmpty, "\(r.text)")
        #expect(r.pid == pid, "exec keeps the pid")
        expectTable(r, sources: [FileID(fd: a), FileID(fd: m)])
        #expect(reportedTree(r, table: table(r)) == identities(args) { FileID(fd: $0.rawValue) })
    }

    @Test func cProgramSpawnFromTheProbe() throws {
        let o = Opened()
        let m = o.memfd()
        let probe = o.open(Probe.path)
        let args: Argdata = .map([(key: .str("report"), value: .fd(FileDescriptor(rawValue: m)))])
        let tree: Argdata = .map([
            (key: .str("report"), value: .fd(FileDescriptor(rawValue: m))),
            (key: .str("spawn"), value: .fd(FileDescriptor(rawValue: probe))),
            (key: .str("args"), value: args),
        ])
        let child = try Program.spawn(FilePath(Probe.path), argdata: tree)
        #expect(try child.wait() == .exited(0))
        // The grandchild's report comes first (up to its "end"), then the
        // driver's.
        let lines = Probe.read(m).split(separator: "\n")
        let end = lines.firstIndex(of: "end") ?? lines.endIndex
        let grandchild = ProbeReport(lines[..<min(end + 1, lines.endIndex)].joined(separator: "\n"))
        expectTable(grandchild, sources: [FileID(fd: m)])
        let driver = ProbeReport(lines[min(end + 1, lines.endIndex)...].joined(separator: "\n"))
        #expect(driver.lines("spawned").first?.dropFirst().map(String.init) == ["0", "0"])
    }

    @Test func swiftExecReplacesThisProcess() async throws {
        let path = "/tmp/fdremap-exec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        await #expect(processExitsWith: .success) { [path = path as String] in
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            let tree: Argdata = ["report": .fd(FileDescriptor(rawValue: fd)), "n": 1]
            do {
                try Program.exec(FilePath(Probe.path), argdata: tree)
            } catch {
                Issue.record("exec failed: \(error)")
            }
        }
        let o = Opened()
        let fd = o.open(path)
        let r = ProbeReport(Probe.read(fd))
        expectTable(r, sources: [FileID(fd: fd)])
        #expect(reportedTree(r, table: table(r)) ==
                identities(["report": .fd(FileDescriptor(rawValue: fd)), "n": 1]) {
                    FileID(fd: $0.rawValue)
                })
    }

    @Test func swiftExecFailsCleanly() async {
        await #expect(processExitsWith: .success) {
            let before = tableSnapshot()
            #expect(throws: Errno.noSuchFileOrDirectory) {
                try Program.exec(FilePath("/nonexistent/program"), argdata: .null)
            }
            let o = Opened()
            let m = o.memfd()
            let script = o.tempFile(Array("#!/nonexistent/sh\n".utf8), mode: 0o755)
            #expect(throws: Errno.noSuchFileOrDirectory) {
                try Program.exec(FileDescriptor(rawValue: script.fd),
                                 argdata: ["report": .fd(FileDescriptor(rawValue: m))])
            }
            o.close(m)
            o.close(script.fd)
            #expect(tableSnapshot() == before)
        }
    }

    @Test func errorsAreTypedAndLeaveNothing() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let notExecutable = o.tempFile(Array("\u{7f}ELF....".utf8), mode: 0o644)
            let garbage = o.tempFile(Array("garbage\n".utf8), mode: 0o755)
            let writable = o.tempFile(Array("garbage\n".utf8), mode: 0o755, flags: O_RDWR)
            let closed = o.dup(m, atLeast: 500)
            o.close(closed)
            let before = tableSnapshot()
            let cases: [(Errno, () throws(Errno) -> ChildProcess)] = [
                (.noSuchFileOrDirectory, { () throws(Errno) in
                    try Program.spawn(FilePath("/nonexistent/program")) }),
                (.permissionDenied, { () throws(Errno) in
                    try Program.spawn(FilePath("/etc/passwd")) }),
                (.permissionDenied, { () throws(Errno) in
                    try Program.spawn(FileDescriptor(rawValue: notExecutable.fd)) }),
                (.execFormatError, { () throws(Errno) in
                    try Program.spawn(FileDescriptor(rawValue: garbage.fd)) }),
                (.badFileDescriptor, { () throws(Errno) in
                    try Program.spawn(FileDescriptor(rawValue: writable.fd)) }),
                (.badFileDescriptor, { () throws(Errno) in
                    try Program.spawn(FilePath(Probe.path),
                                      argdata: ["x": .fd(FileDescriptor(rawValue: closed))]) }),
                (.argListTooLong, { () throws(Errno) in
                    try Program.spawn(FilePath(Probe.path),
                                      argdata: .binary([UInt8](repeating: 1, count: 200_000))) }),
                (.argListTooLong, { () throws(Errno) in
                    try Program.spawn(FilePath(Probe.path),
                                      argdata: .binary([UInt8](repeating: 0, count: 300_000))) }),
                (.argListTooLong, { () throws(Errno) in
                    try Program.spawn(FilePath(Probe.path),
                                      options: .init(environment: [String(repeating: "e", count: 131072)])) }),
            ]
            for (i, (want, spawn)) in cases.enumerated() {
                do throws(Errno) {
                    let child = try spawn()
                    Issue.record("case \(i) started \(child.pid)")
                    _ = try? child.wait()
                } catch {
                    #expect(error == want, "case \(i)")
                }
            }
            // path-based spawns open the program, unlinked temp files included
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())
        }
    }

    @Test func terminations() throws {
        let o = Opened()
        let m = o.memfd()
        let ok = try Program.spawn(FilePath(Probe.path), argdata: ["report": .fd(FileDescriptor(rawValue: m))])
        #expect(try ok.wait() == .exited(0))
        // An unknown command word: the probe exits with 2.
        let two = try Program.spawn(FilePath(Probe.path),
                                    options: .init(environment: ["FDREMAP_PROBE=what"]))
        #expect(try two.wait() == .exited(2))
        let sleeper = try Program.spawn(FilePath(Probe.path), argdata: .null,
                                        options: .init(environment: ["FDREMAP_PROBE=sleep 60000 0"]))
        try sleeper.send(signal: .kill)
        #expect(try sleeper.wait() == .signaled(SIGKILL, coreDumped: false))
    }

    @Test func aDroppedChildIsReapedNotKilled() throws {
        let o = Opened()
        let m = o.memfd()
        var pid: Int32 = -1
        do {
            let child = try Program.spawn(FilePath(Probe.path),
                                          argdata: ["x": .fd(FileDescriptor(rawValue: m))],
                                          options: .init(environment: ["FDREMAP_PROBE=sleep 200 0"]))
            pid = child.pid
        }
        #expect(isGone(pid), "not reaped")
        #expect(Probe.read(m) == "slept\n", "did not run to its end")
    }

    @Test func unavailableDescriptorsTravelAsUnavailable() throws {
        let o = Opened()
        let m = o.memfd()
        let tree: Argdata = ["report": .fd(FileDescriptor(rawValue: m)),
                             "gone": .fd(Argdata.invalidDescriptor)]
        let child = try Program.spawn(FilePath(Probe.path), argdata: tree)
        #expect(try child.wait() == .exited(0))
        let r = ProbeReport(Probe.read(m))
        expectTable(r, sources: [FileID(fd: m)])
        #expect(reportedTree(r, table: table(r)) == identities(tree) { FileID(fd: $0.rawValue) })
    }
}
