// The exec form's options (program_exec_raw with pa_argv, pa_cwd and
// pa_sigmask): the new image has them; a failed exec leaves the caller's
// working directory, mask, descriptors and threads as they were (the
// helper thread changed only its own).
import CFDRemapHost
import Glibc
import Testing

@Suite struct ExecOptionsTests {
    @Test func theNewImageHasTheVectorTheDirectoryAndTheMask() {
        let o = Opened()
        let m = o.memfd()
        let (s, r) = runProbe([m], report: m, command: ["execattr", "0", "/tmp"],
                              checkPid: false)
        guard s.error == 0 else { return }
        #expect(r.ended, "no report from the new image:\n\(r.text)")
        #expect(r.pid == s.pid, "exec keeps the pid")
        #expect(r.args == ["execattr-name", "report", "0"].map { Array($0.utf8) })
        #expect(r.blocked == UInt64(1) << (SIGUSR2 - 1))
        #expect(r.lines("cwd").first.map { $0.dropFirst().joined(separator: " ") } == "/tmp")
        #expect(r.fds.keys.sorted() == [0])
    }

    @Test func aFailedExecLeavesTheCallerAsItWas() {
        let o = Opened()
        let m = o.memfd()
        let (s, r) = runProbe([m], report: m,
                              command: ["execattr", "0", "/nonexistent/directory"],
                              checkPid: false)
        guard s.error == 0 else { return }
        #expect(r.lines("error").first.map(Array.init) == ["error", "\(ENOENT)", "1"],
                "\(r.text)")
    }
}
