// Waiting and signalling by pidfd: after someone else reaped a child and
// its pid went to a new child (made here with clone3's set_tid, as pid
// reuse would), neither the reaper nor ChildProcess touches the newcomer.
import CFDRemapHost
import CFDRemapTestHooks
import FDRemap
import Glibc
import SystemPackage
import Testing

/// Choosing a child's pid takes CAP_SYS_ADMIN (root here and in CI).
let canChoosePids = geteuid() == 0

/// Waits until `pid` has exited, leaving it a zombie (WNOWAIT).
func waitExitedNotReaped(_ pid: pid_t) {
    var si = siginfo_t()
    while waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
}

@Suite(.enabled(if: canChoosePids, "clone3 with set_tid needs CAP_SYS_ADMIN"))
struct PidReuseTests {
    /// The reaper, given a child someone else already reaped whose pid
    /// is now another child's, leaves the newcomer's status alone.
    @Test func theReaperNeverTakesAReusedPid() throws {
        let o = Opened()
        let m = o.memfd()
        let (pid, pidfd) = spawnWithPidfd(["sleep", "0", "0"], [m])
        #expect(exitCode(reap(pid)) == 0)    // someone else's waitpid
        let other = fdr_test_child_at(pid, 0, 42)
        try #require(other == pid, "pid \(pid) not reused: \(other)")
        waitExitedNotReaped(other)
        #expect(program_reap(pid, pidfd) == 0)
        usleep(300_000)    // the reaper's turn
        var status: CInt = 0
        #expect(waitpid(other, &status, WNOHANG) == other, "the reaper took it")
        #expect(exitCode(status) == 42)
    }

    /// ChildProcess.wait() of a child someone else reaped throws ECHILD
    /// and leaves the newcomer that got its pid to its own parent.
    @Test func waitNeverTakesAReusedPid() throws {
        let child = try Program.spawn(FilePath(Probe.swiftPath), argdata: .null)
        let pid = child.pid
        #expect(exitCode(reap(pid)) == 42)
        let other = fdr_test_child_at(pid, 0, 7)
        try #require(other == pid, "pid \(pid) not reused: \(other)")
        waitExitedNotReaped(other)
        do {
            let end = try child.wait()
            Issue.record("wait() took the newcomer's status: \(end)")
        } catch {
            #expect(error == .noChildProcess)
        }
        var status: CInt = 0
        #expect(waitpid(other, &status, WNOHANG) == other, "wait() took it")
        #expect(exitCode(status) == 7)
    }

    /// send(signal:) to a child someone else reaped throws ESRCH and
    /// never signals the newcomer that got its pid.
    @Test func sendNeverSignalsAReusedPid() throws {
        let child = try Program.spawn(FilePath(Probe.swiftPath), argdata: .null)
        let pid = child.pid
        #expect(exitCode(reap(pid)) == 42)
        let other = fdr_test_child_at(pid, 2000, 0)
        try #require(other == pid, "pid \(pid) not reused: \(other)")
        defer { kill(other, SIGKILL); _ = reap(other) }
        #expect(throws: Errno.noSuchProcess) { try child.send(signal: .kill) }
        var status: CInt = 0
        #expect(waitpid(other, &status, WNOHANG) == 0, "the newcomer was signalled")
        _ = consume child
    }
}
