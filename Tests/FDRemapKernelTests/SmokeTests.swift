import Testing
import CFDRemapKernel

@Test func createAndDestroyAProcess() {
    let td = proc_create()
    #expect(td != nil)
    #expect(td!.pointee.td_proc.pointee.p_fd.pointee.fd_lastfile == -1)
    proc_destroy(td)
}
