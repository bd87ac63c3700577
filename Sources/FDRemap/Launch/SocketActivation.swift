import SystemPackage

/// A socket handed to a program by systemd's socket activation: its name,
/// which the program finds in `LISTEN_FDNAMES`, and this process's
/// descriptor of it.
///
/// The protocol is `sd_listen_fds(3)`'s: the program gets descriptors 0,
/// 1 and 2, then the sockets at 3, 4, ..., and `LISTEN_FDS`,
/// `LISTEN_PID` and `LISTEN_FDNAMES` tell it how many, for which process,
/// and their names. See ``Arguments/socketActivation(_:sockets:standardIO:)``.
public struct ListeningSocket: Sendable, Hashable {
    /// The name, as `sd_listen_fds_with_names(3)` reports it: at most 255
    /// characters of printable ASCII (space included), no `:`; may be
    /// empty. Checked when the program is started (`EINVAL`).
    public var name: String
    /// The socket (or any descriptor) of this process; the program gets it
    /// at `3 +` its place in the list.
    public var descriptor: FileDescriptor

    /// A socket with this name.
    public init(name: String, descriptor: FileDescriptor) {
        self.name = name
        self.descriptor = descriptor
    }

    /// Whether `name` may stand in `LISTEN_FDNAMES`, by systemd's rule
    /// (`fdname_is_valid`): at most 255 characters, each printable ASCII
    /// (0x20 to 0x7e) and none a `:`, the list's separator.
    public static func isValid(name: String) -> Bool {
        name.utf8.count <= 255
            && name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }
    }

    /// The variables that announce `sockets` to the program, besides
    /// `LISTEN_PID` (which the launcher's child writes, C's
    /// `PROGRAM_LISTEN_PID`): `LISTEN_FDS=<count>` and
    /// `LISTEN_FDNAMES=<name>:<name>:...`, in that order.
    ///
    /// - Throws: `EINVAL` for a name that ``isValid(name:)`` refuses.
    public static func environment(announcing sockets: [ListeningSocket])
        throws(Errno) -> [String] {
        guard sockets.allSatisfy({ isValid(name: $0.name) }) else { throw .invalidArgument }
        return ["LISTEN_FDS=\(sockets.count)",
                "LISTEN_FDNAMES=" + sockets.map(\.name).joined(separator: ":")]
    }

    /// The protocol's variables: the three `sd_listen_fds(3)` reads, and
    /// `LISTEN_PIDFDID`, which newer systemd versions add. These are the
    /// ones `sd_listen_fds` unsets; a program's own `LISTEN_PORT`, say,
    /// is not the protocol's and stays.
    static let protocolVariables = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                    "LISTEN_PIDFDID"].map { Array(($0 + "=").utf8) }

    /// Whether an environment entry is one of ``protocolVariables``:
    /// such entries are removed from the program's environment before
    /// the new ones are set.
    static func isProtocolEntry(_ entry: [UInt8]) -> Bool {
        protocolVariables.contains { entry.starts(with: $0) }
    }
}

/// This process's standard input, output and error, for
/// ``Arguments/socketActivation(_:sockets:standardIO:)``.
public typealias StandardIO = (input: FileDescriptor, output: FileDescriptor,
                               error: FileDescriptor)

extension Arguments {
    /// Plain strings, and the descriptors and environment of systemd's
    /// socket activation (`sd_listen_fds(3)`).
    ///
    /// ```swift
    /// // listener: a FileDescriptor of a socket you bound and listen on
    /// var config = Program.Configuration(
    ///     .name("my-server"),
    ///     arguments: .socketActivation(["--verbose"], sockets: ["http": listener]))
    /// config.environment = .inherit
    /// let server = try Program.spawn(config)
    /// ```
    ///
    /// The program gets `standardIO` as its descriptors 0, 1 and 2, the
    /// sockets at 3, 4, ... in order, and no other descriptor; its
    /// environment is the configuration's without the protocol's
    /// variables (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`,
    /// `LISTEN_PIDFDID`), and then `LISTEN_FDS=<count>`,
    /// `LISTEN_FDNAMES=<names joined by :>` and `LISTEN_PID=<its own
    /// pid>`, which the launcher's child writes before `execveat(2)`
    /// (C's `PROGRAM_LISTEN_PID`; for ``Program/exec(_:)-swift.type.method`` it is
    /// this process's pid, which the program keeps). Names are checked
    /// as ``ListeningSocket/isValid(name:)`` says (`EINVAL`); a
    /// descriptor that is not open is `EBADF`, as for any launch.
    ///
    /// - Parameters:
    ///   - strings: `argv[1...]`.
    ///   - sockets: The names and descriptors, in order.
    ///   - standardIO: The program's 0, 1 and 2; this process's by
    ///     default.
    public static func socketActivation(
        _ strings: [String] = [], sockets: KeyValuePairs<String, FileDescriptor>,
        standardIO: StandardIO = (.standardInput, .standardOutput, .standardError)
    ) -> Arguments {
        .socketActivated(strings, sockets: sockets.map { ListeningSocket(name: $0.key, descriptor: $0.value) },
                         standardIO: standardIO)
    }
}

extension Program.Environment {
    /// The environment a program started by socket activation with this
    /// environment gets, as `NAME=value` strings: these entries without
    /// the protocol's variables, then `LISTEN_FDS`, `LISTEN_FDNAMES`
    /// (``ListeningSocket/environment(announcing:)``) and, last,
    /// `LISTEN_PID=<pid>`, which a launch has its child write (C's
    /// `PROGRAM_LISTEN_PID`). For display and checks: `fdrun --dry-run`
    /// shows it with its own pid, which an exec keeps.
    ///
    /// - Throws: `EINVAL` for a bad entry (as a launch) or socket name.
    public func entries(activating sockets: [ListeningSocket],
                        pid: Int32) throws(Errno) -> [String] {
        try Self.activated(resolved(), sockets).map { String(decoding: $0, as: UTF8.self) }
            + ["LISTEN_PID=\(pid)"]
    }

    /// `entries` without the protocol's variables, then `LISTEN_FDS` and
    /// `LISTEN_FDNAMES` for `sockets`.
    static func activated(_ entries: [[UInt8]],
                          _ sockets: [ListeningSocket]) throws(Errno) -> [[UInt8]] {
        entries.filter { !ListeningSocket.isProtocolEntry($0) }
            + (try ListeningSocket.environment(announcing: sockets)).map { Array($0.utf8) }
    }
}
