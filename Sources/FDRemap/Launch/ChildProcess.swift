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
/// The handle owns the child: ``wait()`` reaps it and tells how it ended.
/// A handle that goes away without being waited for does not kill its
/// child: the child runs to its end and is then reaped by a background
/// thread of this process (C's `program_reap`, one thread sleeping on the
/// pidfds of such children), so it never stays a zombie.
public struct ChildProcess: ~Copyable, Sendable {
    /// The child's process ID (a `pid_t`).
    public let pid: Int32
    /// Its pidfd (made with it, close-on-exec), or -1.
    private let pidfd: CInt

    internal init(pid: Int32, pidfd: CInt) {
        self.pid = pid
        self.pidfd = pidfd
    }

    deinit {
        // Errors here (no thread could be started) leave a zombie at
        // worst; a deinit cannot report them.
        _ = program_reap(pid, pidfd)
    }

    /// Waits until the child ends, reaps it and tells how it ended.
    ///
    /// Waits by the child's pidfd (`waitid` with `P_PIDFD`), so it can
    /// never take the status of another process that got the same pid.
    ///
    /// - Throws: `ECHILD` when someone else (a `waitpid(-1)` elsewhere in
    ///   the process) reaped the child first.
    public consuming func wait() throws(Errno) -> Termination {
        let pid = self.pid, pidfd = self.pidfd
        discard self
        defer { if pidfd >= 0 { close(pidfd) } }
        var status: CInt = 0
        let error = program_wait(pid, pidfd, &status)
        guard error == 0 else { throw Errno(rawValue: error) }
        return Termination(waitStatus: status)
    }

    /// Sends `signal` to the child, through its pidfd
    /// (`pidfd_send_signal`), so it never reaches another process that
    /// got the same pid after the child was reaped.
    ///
    /// - Throws: `ESRCH` when the child has ended and someone else reaped
    ///   it, `EINVAL` for an invalid signal, `EPERM`.
    public borrowing func send(signal: CInt) throws(Errno) {
        let error = program_kill(pid, pidfd, signal)
        guard error == 0 else { throw Errno(rawValue: error) }
    }
}
