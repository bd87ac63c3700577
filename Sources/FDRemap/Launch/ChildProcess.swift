import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How a child process ended.
public enum Termination: Hashable, Sendable {
    /// The child exited with this status (0 through 255).
    case exited(CInt)
    /// A signal ended the child; `coreDumped` tells whether it left a
    /// core dump.
    case signaled(CInt, coreDumped: Bool)

    /// The termination that a `waitpid` status describes (decoded by
    /// the C library's macros).
    init(waitStatus status: CInt) {
        var value: CInt = 0, core: CInt = 0
        if fdr_swift_wstatus(status, &value, &core) != 0 {
            self = .exited(value)
        } else {
            self = .signaled(value, coreDumped: core != 0)
        }
    }
}

/// A child process started by `Program.spawn`.
///
/// The handle owns the child: ``wait()`` (blocking) or
/// ``wait(teardown:)`` (async) reaps it and tells how it ended. To share
/// it among tasks (a task group, an `async let`), turn it into an
/// ``Execution`` with ``execution()``. A handle that goes away without
/// being waited for does not kill its child: the child runs to its end
/// and is then reaped by a background thread of this process (C's
/// `program_reap`, one thread sleeping on the pidfds of such children),
/// so it never stays a zombie.
public struct ChildProcess: ~Copyable, Sendable {
    /// The child's process ID (a `pid_t`).
    public var pid: Int32 { state.pid }
    let state: ProcessState

    internal init(pid: Int32, pidfd: CInt) {
        self.state = ProcessState(pid: pid, pidfd: pidfd)
    }

    /// Waits until the child ends, blocking the calling thread, reaps it
    /// and tells how it ended.
    ///
    /// Waits by the child's pidfd (`waitid` with `P_PIDFD`), so it can
    /// never take the status of another process that got the same pid.
    ///
    /// - Throws: `ECHILD` when someone else (a `waitpid(-1)` elsewhere in
    ///   the process) reaped the child first.
    public consuming func wait() throws(Errno) -> Termination {
        try state.waitBlocking()
    }

    /// Waits, without blocking a thread, until the child ends, reaps it
    /// and tells how it ended; cancelling the waiting task tears the
    /// child down by `teardown` first.
    ///
    /// ```swift
    /// let child = try Program.spawn(.name("sleep"), arguments: ["10"])
    /// let end = try await child.wait(teardown: [
    ///     .gracefulShutDown(allowedDurationToNextStep: .seconds(2)),
    /// ])
    /// ```
    ///
    /// See ``Execution/wait(teardown:)``: one epoll thread waits for every
    /// child; on cancellation each step's signal goes through the pidfd,
    /// then `SIGKILL`, and the child is reaped before the call returns.
    ///
    /// - Parameter teardown: The steps run on cancellation; empty (the
    ///   default): `SIGKILL` at once.
    /// - Throws: `ECHILD` when someone else reaped the child; `ENOMEM`,
    ///   `EAGAIN` or `ENOSPC` when the wait cannot be registered (the
    ///   child is then reaped in the background when it ends).
    public consuming func wait(teardown: some Sequence<TeardownStep> & Sendable = [TeardownStep]())
        async throws(Errno) -> Termination {
        try await state.wait(teardown: Array(teardown))
    }

    /// This child as a shareable, `Sendable` handle, for task groups and
    /// `async let`.
    public consuming func execution() -> Execution {
        Execution(state)
    }

    /// Sends `signal` to the child, through its pidfd
    /// (`pidfd_send_signal`, C's `program_kill`), so it never reaches
    /// another process that got the same pid after the child was reaped.
    ///
    /// - Throws: `ESRCH` when the child has ended and someone else reaped
    ///   it, `EINVAL` for an invalid signal, `EPERM`.
    public borrowing func send(signal: Signal) throws(Errno) {
        try state.send(signal)
    }
}
