// From 600 descriptors the child shuffles through a socket pair to
// itself (SCM_RIGHTS, 253 descriptors a message) and falls back to dup2
// when the kernel will not pass a source. The tables must be the same
// either way, exactly the list, whichever way the child went; the
// thread's count of socket shuffles says which way it went.
import CFDRemapHost
import CFDRemapTestHooks
import FDRemapTestSupport
import Glibc
import Testing

/// Spawns the probe with `fds` (with `report` among them) and checks the
/// child's table is exactly the list; returns whether the child
/// shuffled through its socket.
@discardableResult
func shuffleAndCheck(_ fds: [Int32], report: Int32, flags: UInt32 = 0,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    let before = fdr_host_scm_launches()
    let (s, r) = runProbe(fds, report: report, flags: flags,
                          sourceLocation: sourceLocation)
    expectTable(r, sources: fds.map { FileID(fd: $0) }, sourceLocation: sourceLocation)
    #expect(s.error == 0, sourceLocation: sourceLocation)
    return fdr_host_scm_launches() > before
}

/// `count` entries of one memfd's copy at `above` or higher, but the
/// first, the memfd itself (the report): sources that are no target.
func oneHighSource(_ o: Opened, count: Int, above: Int32) -> (fds: [Int32], report: Int32) {
    let m = o.memfd()
    var fds = [Int32](repeating: o.dup(m, atLeast: above), count: count)
    fds[0] = m
    return (fds, m)
}

@Suite struct SocketShuffleTests {
    /// Lists with cycles, identities and repeats, in turn and early.
    @Test(arguments: [(700, UInt32(0)), (700, UInt32(PROGRAM_TEST_SERIAL)),
                      (earlyLength, early), (earlyLength, UInt32(PROGRAM_TEST_SERIAL))])
    func longListsGoThroughTheSocket(count: Int, flags: UInt32) {
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
        #expect(shuffleAndCheck(fds, report: report, flags: flags))
    }

    /// The same lists by dup2 alone (the fallback's own path).
    @Test(arguments: [700, earlyLength])
    func dup2AloneGivesTheSameTable(count: Int) {
        raiseNoFile(12000)
        let o = Opened()
        var fds = longList(o, count: count, files: 5, seed: 99)
        let report = o.memfd()
        fds[1] = report
        #expect(!shuffleAndCheck(fds, report: report, flags: UInt32(PROGRAM_TEST_NOSCM)))
    }

    /// Below 600 descriptors the socket costs more than it saves.
    @Test func shortListsUseDup2() {
        raiseNoFile(12000)
        let o = Opened()   // holds the descriptors until the end
        var (fds, m) = oneHighSource(o, count: 599, above: 700)
        #expect(!shuffleAndCheck(fds, report: m))
        fds.append(fds[1])
        #expect(shuffleAndCheck(fds, report: m))
    }

    /// O_PATH descriptors are open, though poll(2) cannot see them: they
    /// are passed as sources (in short and long lists) and they are
    /// cleared as targets.
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
        #expect(shuffleAndCheck(fds, report: m) == (count >= 600))
    }

    /// Without close_range(2) the targets cannot be cleared at once: the
    /// child goes back to dup2 before it has changed anything.
    @Test func noCloseRangeFallsBackToDup2() {
        raiseNoFile(12000)
        let o = Opened()
        let (fds, m) = oneHighSource(o, count: 700, above: 800)
        #expect(!shuffleAndCheck(fds, report: m, flags: UInt32(PROGRAM_TEST_NOCLOSERANGE)))
    }

    /// The exec form's helper (a thread with a private table) shuffles
    /// through its socket too: the driver, whose table is 700 copies of
    /// six files, execs itself with one cycle through all 700.
    @Test func theExecFormToo() {
        raiseNoFile(12000)
        let o = Opened()
        let files = (0..<6).map { _ in o.memfd() }
        let table = (0..<700).map { i in o.dup(files[i % 6], atLeast: 3) }
        let mapping = (0..<700).map { i in "\((i + 1) % 700)" }
        let (r, want) = viaDriver("exec", table: table, report: table[5], mapping: mapping)
        expectTable(r, sources: want)
    }

    /// A source the kernel will not pass (an io_uring): the child goes
    /// back to dup2 before it has changed anything, and the table is
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
}
