#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A signal to send to a child process.
///
/// A thin wrapper over the signal's number, with the usual ones named as
/// in swift-subprocess. Any number the kernel accepts can be made with
/// ``init(rawValue:)`` (real-time signals included); the kernel decides
/// what is valid when the signal is sent (`EINVAL` otherwise).
public struct Signal: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The signal's number, as `kill(2)` takes it.
    public var rawValue: CInt

    /// The signal with number `rawValue`.
    public init(rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// `SIGINT`: interrupt, as Control-C at a terminal.
    public static var interrupt: Signal { Signal(rawValue: SIGINT) }
    /// `SIGTERM`: the polite request to end.
    public static var terminate: Signal { Signal(rawValue: SIGTERM) }
    /// `SIGKILL`: ends the process at once; it cannot be caught.
    public static var kill: Signal { Signal(rawValue: SIGKILL) }
    /// `SIGHUP`: the terminal was closed; daemons often reload on it.
    public static var hangup: Signal { Signal(rawValue: SIGHUP) }
    /// `SIGQUIT`: quit, with a core dump by default.
    public static var quit: Signal { Signal(rawValue: SIGQUIT) }
    /// `SIGUSR1`: for the program's own use.
    public static var user1: Signal { Signal(rawValue: SIGUSR1) }
    /// `SIGUSR2`: for the program's own use.
    public static var user2: Signal { Signal(rawValue: SIGUSR2) }
    /// `SIGALRM`: a timer ran out.
    public static var alarm: Signal { Signal(rawValue: SIGALRM) }
    /// `SIGSTOP`: stops the process; it cannot be caught.
    public static var suspend: Signal { Signal(rawValue: SIGSTOP) }
    /// `SIGCONT`: lets a stopped process run again.
    public static var resume: Signal { Signal(rawValue: SIGCONT) }
    /// `SIGWINCH`: the terminal's window size changed.
    public static var windowSizeChange: Signal { Signal(rawValue: SIGWINCH) }

    /// The C name (`SIGTERM`), or `signal N` for one without a name here.
    public var description: String {
        let names: [CInt: String] = [
            SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGKILL: "SIGKILL",
            SIGHUP: "SIGHUP", SIGQUIT: "SIGQUIT", SIGUSR1: "SIGUSR1",
            SIGUSR2: "SIGUSR2", SIGALRM: "SIGALRM", SIGSTOP: "SIGSTOP",
            SIGCONT: "SIGCONT", SIGWINCH: "SIGWINCH",
        ]
        return names[rawValue] ?? "signal \(rawValue)"
    }
}

/// One step of the sequence that ends a child whose waiting task was
/// cancelled, as in swift-subprocess.
///
/// A sequence is run in order: each step sends its signal and gives the
/// child its duration to exit; if it has not, the next step runs. After
/// the last step the child gets `SIGKILL`, so a teardown always ends the
/// child. The empty sequence is `SIGKILL` at once.
///
/// ```swift
/// let end = try await child.wait(teardown: [
///     .send(signal: .interrupt, allowedDurationToNextStep: .milliseconds(500)),
///     .gracefulShutDown(allowedDurationToNextStep: .seconds(2)),
/// ])
/// ```
public struct TeardownStep: Sendable, Hashable {
    /// The signal this step sends.
    public var signal: Signal
    /// How long the child is given to exit before the next step.
    public var allowedDurationToNextStep: Duration

    /// A step that sends `signal` (through the child's pidfd, C's
    /// `program_kill`) and waits up to `allowedDurationToNextStep` for
    /// the child to exit.
    public static func send(signal: Signal,
                            allowedDurationToNextStep: Duration) -> TeardownStep {
        TeardownStep(signal: signal, allowedDurationToNextStep: allowedDurationToNextStep)
    }

    /// A step that sends ``Signal/terminate`` (C's `program_kill`) and
    /// waits up to `allowedDurationToNextStep` for the child to exit.
    public static func gracefulShutDown(allowedDurationToNextStep: Duration) -> TeardownStep {
        TeardownStep(signal: .terminate, allowedDurationToNextStep: allowedDurationToNextStep)
    }
}
