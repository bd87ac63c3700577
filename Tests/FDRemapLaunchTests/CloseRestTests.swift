// Closing everything that is not passed: each way (close_range with
// CLOSE_RANGE_CLOEXEC, plain close_range, walking /proc/self/fd, brute
// force) forced in turn, and descriptors that other threads open without
// O_CLOEXEC while launches are under way never reach a child.
import CFDRemapTestHooks
import CFDRemapHost
import Glibc
import Synchronization
import Testing

/// Each test hook and the way it leaves.
let closeWays: [(flags: UInt32, closedBy: Int32)] = [
    (0, PROGRAM_CLOSED_CLOEXECRANGE),
    (UInt32(PROGRAM_TEST_NOCLOEXECRANGE), PROGRAM_CLOSED_RANGE),
    (UInt32(PROGRAM_TEST_NOCLOSERANGE), PROGRAM_CLOSED_PROCFS),
    (UInt32(PROGRAM_TEST_NOCLOSERANGE | PROGRAM_TEST_NOPROCFS), PROGRAM_CLOSED_BRUTE),
]

@Suite struct CloseRestTests {
    /// In this process, with strays open without close-on-exec.
    @Test(arguments: closeWays.indices)
    func eachWayInProcess(_ way: Int) {
        let (flags, closedBy) = closeWays[way]
        let o = Opened()
        let m = o.memfd()
        _ = o.open("/dev/null", cloexec: false)
        _ = o.dup(m, atLeast: 900, cloexec: false)
        let a = o.memfd()
        let fds = [a, m, a]
        let (s, r) = runProbe(fds, report: m, flags: flags)
        #expect(s.closedBy == closedBy)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    /// In the driver's exact table: strays between and above the passed
    /// descriptors, the executable among them; spawn and exec.
    @Test(arguments: closeWays.indices, ["spawn", "exec"])
    func eachWayInAnExactTable(_ way: Int, _ verb: String) {
        let (flags, closedBy) = closeWays[way]
        let o = Opened()
        let table = (0..<6).map { _ in o.memfd() }
        let (r, want) = viaDriver(verb, table: table, report: table[5],
                                  mapping: ["4", "5", "0"], flags: flags)
        expectTable(r, sources: want)
        if verb == "spawn" {
            #expect(r.lines("spawned").first?[2] == "\(closedBy)")
        }
    }

    /// Brute force reaches sources above the soft RLIMIT_NOFILE.
    @Test func bruteForceReachesSourcesAboveTheLimit() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let high = o.dup(m, atLeast: 3000)
            let stray = o.dup(m, atLeast: 2000, cloexec: false)
            #expect(stray < high)
            setSoftLimit(RLIMIT_NOFILE, 100)
            let flags = UInt32(PROGRAM_TEST_NOCLOSERANGE | PROGRAM_TEST_NOPROCFS)
            let (s, r) = runProbe([high], report: high, flags: flags)
            #expect(s.closedBy == PROGRAM_CLOSED_BRUTE)
            expectTable(r, sources: [FileID(fd: m)])
        }
    }

    /// A descriptor held above a lowered soft RLIMIT_NOFILE, not passed
    /// and without close-on-exec, reaches no child on any way: brute
    /// force closes up to the hard limit, not the soft one.
    @Test func strayAboveALoweredSoftLimitNeverLeaks() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let stray = o.dup(m, atLeast: 500, cloexec: false)
            #expect(stray >= 500)
            setSoftLimit(RLIMIT_NOFILE, 100)
            for (flags, closedBy) in closeWays {
                let (s, r) = runProbe([m], report: m, flags: flags)
                #expect(s.closedBy == closedBy)
                expectTable(r, sources: [FileID(fd: m)])
            }
        }
    }

    /// Hundreds of launches while two threads keep opening descriptors
    /// without O_CLOEXEC: every child has exactly its one descriptor.
    @Test(arguments: closeWays.indices)
    func descriptorsOpenedMeanwhileNeverLeak(_ way: Int) throws {
        let (flags, _) = closeWays[way]
        let o = Opened()
        let probe = o.open(Probe.path)
        let passed = o.open("/dev/null")
        let openers = Openers(count: 2)
        defer { openers.stop() }
        var leaks = 0
        for _ in 0..<(way == 3 ? 40 : 150) {
            let s = spawnRaw(probe, [], [passed], env: ["FDREMAP_PROBE=countfds"], flags: flags)
            try #require(s.error == 0)
            if exitCode(reap(s.pid)) != 1 { leaks += 1 }
        }
        #expect(leaks == 0)
        #expect(openers.opened() > 100, "the openers ran meanwhile")
    }
}

/// Threads that open /dev/null without O_CLOEXEC in a loop, each keeping
/// up to 16 open, until stopped; then they close theirs.
final class Openers: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let count = Atomic<Int>(0)
    private let threads: Mutex<[pthread_t]> = Mutex([])

    init(count n: Int) {
        for _ in 0..<n {
            let box = Unmanaged.passRetained(self).toOpaque()
            var t = pthread_t()
            pthread_create(&t, nil, { arg in
                let me = Unmanaged<Openers>.fromOpaque(arg!).takeRetainedValue()
                me.run()
                return nil
            }, box)
            threads.withLock { $0.append(t) }
        }
    }

    private func run() {
        var mine: [Int32] = []
        while !stopping.load(ordering: .relaxed) {
            let fd = open("/dev/null", O_RDONLY)
            if fd >= 0 {
                mine.append(fd)
                count.add(1, ordering: .relaxed)
            }
            if mine.count >= 16 { close(mine.removeFirst()) }
        }
        mine.forEach { close($0) }
    }

    func opened() -> Int { count.load(ordering: .relaxed) }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        for t in threads.withLock({ $0 }) { pthread_join(t, nil) }
    }
}
