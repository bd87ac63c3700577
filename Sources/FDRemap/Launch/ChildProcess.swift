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

    /// The termination that a `waitpid` status describes.
    init(waitStatus status: CInt) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(signal, coreDumped: status & 0x80 != 0)
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
    /// - Throws: `ECHILD` when someone else (a `waitpid(-1)` elsewhere in
    ///   the process) reaped the child first.
    public consuming func wait() throws(Errno) -> Termination {
        let pid = self.pid, pidfd = self.pidfd
        discard self
        defer { if pidfd >= 0 { close(pidfd) } }
        var status: CInt = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw Errno(rawValue: errno) }
        }
        return Termination(waitStatus: status)
    }

    /// Sends `signal` to the child (`kill`). The child cannot have been
    /// replaced by another process: until it is waited for, its ID stays
    /// its own.
    ///
    /// - Throws: `EINVAL` for an invalid signal, `EPERM`.
    public borrowing func send(signal: CInt) throws(Errno) {
        guard kill(pid, signal) == 0 else { throw Errno(rawValue: errno) }
    }
}
