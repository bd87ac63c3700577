// Every class of mapping, checked on a real child: its table must be
// exactly descriptors 0 ..< fds.count, each the source's file (same
// st_dev and st_ino), none close-on-exec, nothing else open.
import CFDRemapHost
import Glibc
import Testing
import FDRemapTestSupport

/// Runs the probe as a driver whose own table is exactly `table` (this
/// process's descriptors become its 0 ..< table.count; `table` must
/// contain the report memfd `report`): it launches itself (`verb` is
/// "spawn" or "exec") with the descriptor list `mapping` (its own
/// numbers; an entry ending in "c" is made close-on-exec first, one
/// ending in "x" is closed first and left out, so that the driver's
/// executable, opened next, takes the lowest such number; the
/// report's number is appended when it is missing), and that grandchild
/// reports its table.  Returns the report and the files the grandchild's
/// descriptors must be.
func viaDriver(_ verb: String, table: [Int32], report: Int32, mapping: [String],
               flags: UInt32 = 0,
               sourceLocation: SourceLocation = #_sourceLocation) -> (ProbeReport, [FileID?]) {
    let r = table.firstIndex(of: report)!
    var mapping = mapping
    if !mapping.contains(where: { Int($0.filter(\.isNumber)) == r && !$0.hasSuffix("x") }) {
        mapping.append("\(r)")
    }
    let own = mapping.filter { !$0.hasSuffix("x") }.map { Int($0.filter(\.isNumber))! }
    let k = own.firstIndex(of: r)!
    let command = [verb, "\(r)", "\(k)", "\(flags)"] + mapping
    let (s, rep) = runProbe(table, report: report, command: command,
                            checkPid: false, sourceLocation: sourceLocation)
    let closed = Set(mapping.filter { $0.hasSuffix("x") }.map { Int($0.dropLast())! })
    let expected = own.map { $0 < table.count && !closed.contains($0) ? FileID(fd: table[$0]) : nil }
    if verb == "spawn" {
        let done = rep.lines("spawned")
        #expect(done.count == 1 && done[0][1] == "0" && done[0][3] == "0",
                "driver: \(done)", sourceLocation: sourceLocation)
    } else {
        #expect(rep.pid == s.pid, "exec keeps the pid", sourceLocation: sourceLocation)
        #expect(rep.lines("error").isEmpty, "driver: \(rep.lines("error"))",
                sourceLocation: sourceLocation)
    }
    return (rep, expected)
}

@Suite struct MappingTests {
    @Test func standardDescriptorsAndAMemfd() throws {
        let o = Opened()
        let m = o.memfd()
        let std: [Int32] = [0, 1, 2]
        try #require(std.allSatisfy { FileID(fd: $0) != nil })
        let (_, r) = runProbe(std + [m], report: m)
        expectTable(r, sources: (std + [m]).map { FileID(fd: $0) })
    }

    @Test func swapStdinAndStdoutInProcess() throws {
        let o = Opened()
        let m = o.memfd()
        try #require(FileID(fd: 0) != nil && FileID(fd: 1) != nil)
        let fds: [Int32] = [1, 0, m]
        let (_, r) = runProbe(fds, report: m)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    @Test func sameSourceManyTimes() {
        let o = Opened()
        let m = o.memfd(), a = o.memfd()
        let fds: [Int32] = [m, a, a, a, m, a, a]
        let (_, r) = runProbe(fds, report: m)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    @Test func sourcesFarAboveTheTargets() {
        raiseNoFile(12000)
        let o = Opened()
        let m = o.memfd(), a = o.memfd(), b = o.memfd()
        let highA = o.dup(a, atLeast: 5000), highB = o.dup(b, atLeast: 11000)
        let highM = o.dup(m, atLeast: 8000)
        let fds: [Int32] = [highB, highA, highM, highB]
        let (_, r) = runProbe(fds, report: highM)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    /// A list longer than 1024 is read before the table is looked at:
    /// when its own highest entry reaches its length, that decides; when
    /// it does not, the highest descriptor open elsewhere must still be
    /// found (here one above the list's length that the list never names).
    @Test(arguments: [true, false])
    func aLongListOfOneDescriptor(endsHigh: Bool) {
        raiseNoFile(12000)
        let o = Opened()
        let m = o.memfd(), a = o.memfd()
        let high = o.dup(a, atLeast: 3000)
        var fds = [Int32](repeating: m, count: 3000)
        if endsHigh { fds[2999] = high }
        let (_, r) = runProbe(fds, report: m)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    @Test func closeOnExecSourcesArePassedWithoutIt() {
        let o = Opened()
        let m = o.memfd(), a = o.open("/dev/null")
        #expect(fcntl(a, F_GETFD) & FD_CLOEXEC != 0)
        let fds: [Int32] = [a, m]
        let (_, r) = runProbe(fds, report: m)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    @Test func theExecutableAmongTheSources() {
        let o = Opened()
        let m = o.memfd()
        let probe = o.open(Probe.path)
        let s = spawnRaw(probe, data(["report", "1"]), [probe, m, probe])
        #expect(s.error == 0)
        guard s.error == 0 else { return }
        reap(s.pid)
        let r = ProbeReport(Probe.read(m))
        expectTable(r, sources: [probe, m, probe].map { FileID(fd: $0) })
    }

    @Test func anEmptyListLeavesNoDescriptorAtAll() throws {
        let o = Opened()
        let probe = o.open(Probe.path)
        let path = "/tmp/fdremap-empty-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        let s = spawnRaw(probe, [], [], env: ["FDREMAP_PROBE=reportpath " + path])
        try #require(s.error == 0)
        #expect(exitCode(reap(s.pid)) == 0)
        let fd = o.open(path)
        let r = ProbeReport(Probe.read(fd))
        #expect(r.ended)
        #expect(r.fds.isEmpty, "\(r.text)")
    }

    // The driver gives these an exact table of their own.

    @Test func identityEntriesLoseCloseOnExec() {
        let o = Opened()
        let table = (0..<5).map { _ in o.memfd() } + [o.memfd()]
        let (r, want) = viaDriver("spawn", table: table, report: table[5],
                                  mapping: ["0c", "1", "2c", "3c", "4", "5c"])
        expectTable(r, sources: want)
    }

    @Test(arguments: [
        ["1", "0", "2"],                       // swap
        ["1", "2", "0", "3"],                  // cycle of 3
        ["4", "3", "5"],                       // [4, 3] with 3 and 4 open
        ["1", "2", "3", "4", "5"],             // shift down: overlaps
        ["5", "0", "1", "2", "3", "4"],        // shift up: one long cycle
        ["2", "2", "2", "5", "0", "0"],        // repeats over targets
        ["1", "0", "3", "2", "5", "4"],        // three swaps, report in one
    ])
    func overlapsAndCycles(_ mapping: [String]) {
        let o = Opened()
        let table = (0..<5).map { _ in o.memfd() } + [o.memfd()]
        let (r, want) = viaDriver("spawn", table: table, report: table[5], mapping: mapping)
        expectTable(r, sources: want)
    }

    @Test func longCycle() {
        let o = Opened()
        let n = 40
        let table = (0..<n).map { _ in o.memfd() }
        // One cycle through every descriptor: i takes i+1 in a seeded order.
        var g = SplitMix64(seed: 7)
        let order = Array(0..<n).shuffled(using: &g)
        var mapping = [String](repeating: "", count: n)
        for i in 0..<n { mapping[order[i]] = "\(order[(i + 1) % n])" }
        let (r, want) = viaDriver("spawn", table: table, report: table[0], mapping: mapping)
        expectTable(r, sources: want)
    }

    @Test func seededRandomMappings() {
        var g = SplitMix64(seed: 42)
        for round in 0..<12 {
            let o = Opened()
            let size = Int.random(in: 2...24, using: &g)
            let table = (0..<size).map { _ in o.memfd() }
            // Up to the driver's highest descriptor (its executable) + 1.
            let n = Int.random(in: 1...(size + 1), using: &g)
            var mapping = (0..<n).map { _ -> String in
                let s = Int.random(in: 0..<size, using: &g)
                return Bool.random(using: &g) ? "\(s)c" : "\(s)"
            }
            if !mapping.contains(where: { $0.filter(\.isNumber) == "0" }) {
                mapping[Int.random(in: 0..<n, using: &g)] = "0"
            }
            let (r, want) = viaDriver("spawn", table: table, report: table[0], mapping: mapping)
            expectTable(r, sources: want, sourceLocation: #_sourceLocation)
            if r.fds.count != want.count { Issue.record("round \(round): \(mapping)") }
        }
    }

    @Test(arguments: [
        ["1x", "0", "2", "3", "4"],            // 1 written from a source
        ["1x", "2", "0", "4", "3"],            // 1 written, cycle 3 <-> 4
        ["1x", "4", "4", "4", "4"],            // 1 written, repeats
    ])
    func theExecutableIsMovedWhenATargetWouldClobberIt(_ mapping: [String]) {
        // With 1 closed first, the driver's executable is its descriptor 1.
        let o = Opened()
        let table = (0..<5).map { _ in o.memfd() }
        let (r, want) = viaDriver("spawn", table: table, report: table[4], mapping: mapping)
        expectTable(r, sources: want)
    }

    @Test func theExecutablePassedAtItsOwnNumberStays() {
        let o = Opened()
        let table = [o.memfd(), o.memfd(), o.memfd()]
        let (r, _) = viaDriver("spawn", table: table, report: table[2],
                               mapping: ["0", "1", "2", "3"])
        #expect(r.fds.keys.sorted() == [0, 1, 2, 3])
        #expect(r.fds[3]?.path.hasSuffix("/fdremap-probe") == true)
        #expect(r.fds[3]?.cloexec == false)
    }
}
