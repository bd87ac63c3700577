// From 256 descriptors a launch in turn gives its child a fresh table:
// the caller sends every file through a socket pair of its own
// (SCM_RIGHTS, 253 a message), the child starts sharing the caller's
// table, unshares it keeping only the receiving end and what lies below
// it, closes that, and receives the files at 0 ..< n. When the caller
// cannot send (a source the kernel will not pass, a closed one) or the
// child cannot unshare so, the child shuffles a copy of the caller's
// table with dup2 instead. The tables must be the same either way:
// exactly the list. The thread's count of fresh tables says which way
// the child went.
import CFDRemapHost
import CFDRemapTestHooks
import FDRemapTestSupport
import Glibc
import Testing

/// Spawns the probe with `fds` (with `report` among them) and checks the
/// child's table is exactly the list; returns whether the child had a
/// fresh table.
@discardableResult
func shuffleAndCheck(_ fds: [Int32], report: Int32, flags: UInt32 = 0, execfd: Int32? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let before = fdr_host_fresh_launches()
    let (s, r) = runProbe(fds, report: report, flags: flags, execfd: execfd,
                          sourceLocation: sourceLocation)
    expectTable(r, sources: fds.map { FileID(fd: $0) }, sourceLocation: sourceLocation)
    #expect(s.error == 0, sourceLocation: sourceLocation)
    return fdr_host_fresh_launches() > before
}

/// `count` entries of one memfd's copy at `above` or higher, but the
/// first, the memfd itself (the report): sources that are no target.
func oneHighSource(_ o: Opened, count: Int, above: Int32) -> (fds: [Int32], report: Int32) {
    let m = o.memfd()
    var fds = [Int32](repeating: o.dup(m, atLeast: above), count: count)
    fds[0] = m
    return (fds, m)
}

/// Where the executable stands in a fresh table's list.
enum ExecutablePlace: String, CaseIterable, Codable, Sendable {
    /// Above the targets and not passed: sent last, it lands at n.
    case aboveNotPassed
    /// A target, passed at its own number: it arrives with the list.
    case passedAtItsOwnNumber
    /// A target passed at another number, and its own number written.
    case passedElsewhere
    /// A target, not passed: sent last too.
    case aTargetNotPassed
}

@Suite struct FreshTableTests {
    /// Lists with cycles, identities and repeats: a fresh table in turn;
    /// an early child (which only the test hook starts for such a list)
    /// shuffles a copy.
    @Test(arguments: [(300, UInt32(0)), (700, UInt32(0)), (700, UInt32(PROGRAM_TEST_SERIAL)),
                      (earlyLength, early), (earlyLength, UInt32(PROGRAM_TEST_SERIAL))])
    func longListsGetAFreshTable(count: Int, flags: UInt32) {
        raiseNoFile(12000)
        let o = Opened()
        var fds = longList(o, count: count, files: 7, seed: UInt64(count) + UInt64(flags))
        // Identity entries: a few list entries name their own target.
        for i in stride(from: 5, to: count, by: 97) where fds[i] != Int32(i) {
            fds[i] = o.dup(fds[i], atLeast: 0)
            if fds[i] != Int32(i) { o.close(fds[i]); fds[i] = fds[i - 1] }
        }
        let report = o.memfd()
        fds[count / 2] = report
        #expect(shuffleAndCheck(fds, report: report, flags: flags) == (flags != early))
    }

    /// The same lists by dup2 alone (the fallback's own path).
    @Test(arguments: [700, earlyLength])
    func dup2AloneGivesTheSameTable(count: Int) {
        raiseNoFile(12000)
        let o = Opened()
        var fds = longList(o, count: count, files: 5, seed: 99)
        let report = o.memfd()
        fds[1] = report
        #expect(!shuffleAndCheck(fds, report: report, flags: UInt32(PROGRAM_TEST_NOFRESH)))
    }

    /// Below 256 descriptors the socket costs more than it saves.
    @Test func shortListsShuffleACopy() {
        raiseNoFile(12000)
        let o = Opened()   // holds the descriptors until the end
        var (fds, m) = oneHighSource(o, count: 255, above: 700)
        #expect(!shuffleAndCheck(fds, report: m))
        fds.append(fds[1])
        #expect(shuffleAndCheck(fds, report: m))
    }

    /// O_PATH descriptors are open, though poll(2) cannot see them: they
    /// are passed as sources (in short and long lists), and where they
    /// are targets they are gone.
    @Test(arguments: [8, 700])
    func oPathDescriptorsArePassed(atLeast: Int) {
        raiseNoFile(12000)
        let o = Opened()
        let m = o.memfd()
        let dirs = (0..<4).map { _ in o.open("/tmp", O_PATH_LINUX | O_DIRECTORY | O_CLOEXEC) }
        // The long list reaches past every one of them: targets too.
        let count = atLeast > 100 ? max(atLeast, Int(dirs.max()!) + 2) : atLeast
        let high = o.dup(m, atLeast: Int32(count + 10))
        var fds = [Int32](repeating: high, count: count)
        fds[0] = m
        for (i, d) in dirs.enumerated() { fds[1 + i * (count / 5)] = d }
        #expect(shuffleAndCheck(fds, report: m) == (count >= 256))
    }

    /// Without close_range(2) the child cannot unshare the table: it
    /// exits having changed nothing, and a child is started again with a
    /// copy, which it shuffles. The first is reaped, the socket closed.
    @Test func noCloseRangeStartsAgainWithACopy() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(12000)
            let o = Opened()
            let (fds, m) = oneHighSource(o, count: 700, above: 800)
            let before = tableSnapshot()
            #expect(!shuffleAndCheck(fds, report: m, flags: UInt32(PROGRAM_TEST_NOCLOSERANGE)))
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())
        }
    }

    /// When the files do not all arrive (a security module refusing the
    /// child one, which the test hook stands for), the child, whose table
    /// is already its own, exits, and a child with a copy of the caller's
    /// table shuffles it instead: the same table, the first child reaped,
    /// the socket closed, in a spawn and in an exec.
    @Test func aRefusedReceiveStartsAgainWithACopy() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(12000)
            let o = Opened()
            let (fds, m) = oneHighSource(o, count: 700, above: 800)
            let before = tableSnapshot()
            #expect(!shuffleAndCheck(fds, report: m, flags: UInt32(PROGRAM_TEST_FRESHRECV)))
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())
        }
        raiseNoFile(12000)
        let o = Opened()
        let files = (0..<6).map { _ in o.memfd() }
        let table = (0..<700).map { i in o.dup(files[i % 6], atLeast: 3) }
        let mapping = (0..<700).map { i in "\((i + 3) % 700)" }
        let (r, want) = viaDriver("exec", table: table, report: table[5], mapping: mapping,
                                  flags: UInt32(PROGRAM_TEST_FRESHRECV))
        expectTable(r, sources: want)
    }

    /// Files sent for a fresh table that its child never received (here
    /// it refuses them, and a second child shuffles a copy) are dropped,
    /// not left in the socket: a process that another thread forked
    /// meanwhile holds a copy of the socket for as long as it lives, and
    /// with it would hold a pipe's write end the caller has closed, so
    /// that its reader never saw the end. The forker forks as fast as it
    /// can (a fork of this process takes some 0.3 ms); without the drain
    /// most rounds here kept the write end open.
    @Test func filesNeverReceivedDoNotOutliveTheLaunch() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(12000)
            let o = Opened()
            var (fds, m) = oneHighSource(o, count: 700, above: 800)
            let probe = o.open(Probe.path, O_RDONLY | O_CLOEXEC)
            for round in 0..<10 {
                var p: [Int32] = [0, 0]
                #expect(pipe(&p) == 0)
                p.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
                fds[5] = p[1]
                #expect(fdr_test_forker_start(p[1]) == 0)
                usleep(2000)
                let s = spawnRaw(probe, data(["countfds"]), fds,
                                 flags: UInt32(PROGRAM_TEST_FRESHRECV))
                #expect(s.error == 0)
                if s.error == 0 { reap(s.pid) }
                #expect(fdr_test_forker_stop() > 0, "the forker ran")
                close(p[1])
                var pfd = pollfd(fd: p[0], events: Int16(POLLIN), revents: 0)
                #expect(poll(&pfd, 1, 500) == 1, "round \(round): the write end is still open")
                fdr_test_forker_reap()
                close(p[0])
            }
            _ = m
        }
    }

    /// The exec form's helper (a thread) takes a fresh table too: the
    /// driver, whose table is copies of six files, execs itself with one
    /// cycle through all of them; 1,500 are more than may be in flight
    /// at once, which only a spawn streams: that helper shuffles a copy.
    @Test(arguments: [700, 1500])
    func theExecFormToo(count: Int) {
        raiseNoFile(12000)
        let o = Opened()
        let files = (0..<6).map { _ in o.memfd() }
        let table = (0..<count).map { i in o.dup(files[i % 6], atLeast: 3) }
        let mapping = (0..<count).map { i in "\((i + 1) % count)" }
        let (r, want) = viaDriver("exec", table: table, report: table[5], mapping: mapping)
        expectTable(r, sources: want)
    }

    /// A source the kernel will not pass (an io_uring): the caller
    /// cannot send it, so the child shuffles a copy, and the table is
    /// still exactly the list.
    @Test func aSourceTheSocketRefusesFallsBackToDup2() throws {
        let ring = fdr_test_io_uring()
        try #require(ring >= 0 || ring == -ENOSYS || ring == -EPERM,
                     "io_uring_setup: \(String(cString: strerror(-ring)))")
        guard ring >= 0 else { return }   // no io_uring here: nothing to refuse
        raiseNoFile(12000)
        let o = Opened()
        let ringFD = o.adopt(ring)
        var (fds, m) = oneHighSource(o, count: 700, above: 800)
        fds[ringFD == 150 ? 149 : 150] = ringFD   // not an identity entry
        #expect(!shuffleAndCheck(fds, report: m))
    }

    /// More than 1,000 files are never in flight at once (the kernel
    /// counts a user's, and refuses descriptor passing to the user's
    /// processes whose soft limit the count exceeds): the caller sends
    /// the rest while its child receives. When the child stops early
    /// (here it refuses its files) or a source turns out closed halfway
    /// (after the first thousand were sent), the caller stops sending and
    /// a child with a copy takes over, which reports the closed source as
    /// EBADF; with and without a pidfd asked for (two ways to start the
    /// child), the caller's table as it was and no child left.
    @Test(arguments: [false, true])
    func aStreamedTableStopsCleanly(withPidfd: Bool) async {
        await #expect(processExitsWith: .success, "pidfd: \(withPidfd)") { [withPidfd] in
            raiseNoFile(12000)
            let o = Opened()
            var (fds, m) = oneHighSource(o, count: 4000, above: 5000)
            let probe = o.open(Probe.path, O_RDONLY | O_CLOEXEC)
            let before = tableSnapshot()
            let start = fdr_host_fresh_launches()
            var s = spawnRaw(probe, data(["countfds"]), fds, withPidfd: withPidfd)
            #expect(s.error == 0)
            if s.error == 0 { #expect(exitCode(reap(s.pid)) == Int32(4000 % 256)) }
            #expect(fdr_host_fresh_launches() - start == 1, "streamed")
            s = spawnRaw(probe, data(["countfds"]), fds,
                         flags: UInt32(PROGRAM_TEST_FRESHRECV), withPidfd: withPidfd)
            #expect(s.error == 0)
            if s.error == 0 { #expect(exitCode(reap(s.pid)) == Int32(4000 % 256)) }
            #expect(fdr_host_fresh_launches() - start == 1, "the second shuffled a copy")
            let closed = o.dup(m, atLeast: 11000)
            o.close(closed)
            fds[2000] = closed
            #expect(spawnRaw(probe, [], fds, withPidfd: withPidfd).error == EBADF)
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())
        }
    }

    /// The caller's socket lands below the targets (the child moves its
    /// end above them) or above them (it stays): the same table. Each in
    /// a process of its own, whose lowest free number the test decides.
    @Test(arguments: [false, true])
    func theSocketBelowOrAboveTheTargets(above: Bool) async {
        await #expect(processExitsWith: .success, "socket above: \(above)") { [above] in
            raiseNoFile(12000)
            let o = Opened()
            let (fds, m) = oneHighSource(o, count: 300, above: 800)
            let probe = o.open(Probe.path, O_RDONLY | O_CLOEXEC)
            var filler: [Int32] = []
            if above {
                // Every free number up to 310: socketpair() goes higher.
                while true {
                    let fd = dup(m)
                    if fd > 310 { close(fd); break }
                    filler.append(fd)
                }
            }
            defer { filler.forEach { close($0) } }
            let before = tableSnapshot()
            #expect(shuffleAndCheck(fds, report: m, execfd: probe))
            #expect(tableSnapshot() == before)
        }
    }

    /// The executable wherever it stands: the table is exactly the list,
    /// and the program runs.
    @Test(arguments: ExecutablePlace.allCases)
    func theExecutableWhereverItStands(_ place: ExecutablePlace) async {
        await #expect(processExitsWith: .success, "\(place)") { [place] in
            raiseNoFile(12000)
            let o = Opened()
            var (fds, m) = oneHighSource(o, count: 300, above: 800)
            let probe = o.dup(o.open(Probe.path, O_RDONLY | O_CLOEXEC),
                              atLeast: place == .aboveNotPassed ? 400 : 40)
            switch place {
            case .aboveNotPassed, .aTargetNotPassed: break
            case .passedAtItsOwnNumber: fds[Int(probe)] = probe
            case .passedElsewhere: fds[7] = probe
            }
            #expect(probe < 300 || place == .aboveNotPassed)
            #expect(shuffleAndCheck(fds, report: m, execfd: probe))
        }
    }

    /// What fails leaves the caller's table as it was and no child: a
    /// closed source (the caller cannot send it: EBADF, as the model
    /// says), and a program the kernel will not run (the child fails
    /// after it has received its table).
    @Test func failuresLeaveTheTableAndNoChild() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(12000)
            let o = Opened()
            var (fds, m) = oneHighSource(o, count: 700, above: 800)
            let closed = o.dup(m, atLeast: 2000)
            o.close(closed)
            fds[400] = closed
            let probe = o.open(Probe.path, O_RDONLY | O_CLOEXEC)
            let before = tableSnapshot()
            let start = fdr_host_fresh_launches()
            #expect(spawnRaw(probe, data(["report", "0"]), fds).error == EBADF)
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren())

            fds[400] = fds[401]
            let garbage = o.tempFile(Array("not a program\n".utf8), mode: 0o755).fd
            let before2 = tableSnapshot()
            #expect(spawnRaw(garbage, [], fds).error == ENOEXEC)
            #expect(tableSnapshot() == before2)
            #expect(hasNoChildren())
            // The second launch's children (the first and the model's
            // exact retry) both had fresh tables.
            #expect(fdr_host_fresh_launches() - start == 2)
        }
    }
}
