import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Starting real programs with exactly the descriptors their argdata
/// names, CloudABI's `proc_exec` made real on Linux.
///
/// The new program's descriptor `i` is the `i`-th distinct descriptor of
/// the tree (in the order ``Argdata/serialize()`` lists them, depth
/// first), and every other descriptor is closed: none of this process's
/// other files, none another thread opens meanwhile. The program reads
/// its tree with ``Argdata/current()``, where every descriptor is its own
/// number.
///
/// ```swift
/// let log = try FileDescriptor.open("/var/log/app", .writeOnly, options: .append)
/// let child = try Program.spawn("/usr/libexec/app",
///                               argdata: ["log": .fd(log), "workers": 4])
/// let end = try child.wait()
/// ```
///
/// Every failure before the program runs throws, with nothing left behind
/// (no descriptor, no child): `ENOENT`, `EACCES` and `ENOEXEC` for an
/// executable that cannot run, `EBADF` for a descriptor that is not open
/// (or an executable open for writing), `E2BIG` when the tree cannot
/// travel in the argument vector (see the C header `fdremap/program.h`)
/// or names more descriptors than this process has, `EMFILE` past
/// `RLIMIT_NOFILE`. A `#!` script gets one extra descriptor, its own file,
/// at the number after the passed ones.
public enum Program {
    /// How the program is started, besides its tree.
    public struct Options: Sendable {
        /// `argv[0]`; `nil` gives the executable's file name.
        public var name: String?
        /// The environment, as `NAME=value` strings; empty by default. A
        /// string with a NUL inside is refused (`EINVAL`), never cut.
        public var environment: [String]

        /// Options with `name` and `environment`.
        public init(name: String? = nil, environment: [String] = []) {
            self.name = name
            self.environment = environment
        }
    }

    /// Starts the program at `executable` as a child process (C's
    /// `program_spawn_raw`, with the tree serialised as `argdata_serialize`
    /// writes it).
    ///
    /// - Parameters:
    ///   - executable: The program's path; it is opened with `O_PATH`
    ///     (so execute permission is enough) and closed again.
    ///   - argdata: The program's tree; its descriptors are the ones the
    ///     program gets.
    ///   - options: Its name and environment.
    /// - Returns: The child, to wait for (or to drop: it is then reaped
    ///   in the background when it ends, never killed).
    /// - Throws: The open's errors (`ENOENT`, ...), and those above.
    public static func spawn(_ executable: FilePath, argdata: Argdata = .null,
                             options: Options = Options()) throws(Errno) -> ChildProcess {
        let fd = try openPathOnly(executable)
        defer { close(fd) }
        return try spawn(FileDescriptor(rawValue: fd), argdata: argdata,
                         options: options.named(after: executable))
    }

    /// Starts the program open at `executable` as a child process (C's
    /// `program_spawn_raw`).
    ///
    /// - Parameters:
    ///   - executable: A descriptor of the program, open for reading or
    ///     with `O_PATH`, not for writing. It need not be in the tree.
    ///   - argdata: The program's tree.
    ///   - options: Its name and environment.
    /// - Returns: The child.
    /// - Throws: The errors above.
    public static func spawn(_ executable: FileDescriptor, argdata: Argdata = .null,
                             options: Options = Options()) throws(Errno) -> ChildProcess {
        var pid: pid_t = -1
        var pidfd: CInt = -1
        try launch(executable, argdata, options, pid: &pid, pidfd: &pidfd)
        return ChildProcess(pid: pid, pidfd: pidfd)
    }

    /// Replaces this process (its ID stays) with the program at
    /// `executable` (C's `program_exec_raw`).  Other threads end when the
    /// program starts.
    ///
    /// - Throws: As `spawn` with a path does, with
    ///   this process and its descriptors as they were.
    public static func exec(_ executable: FilePath, argdata: Argdata = .null,
                            options: Options = Options()) throws(Errno) -> Never {
        let fd = try openPathOnly(executable)
        defer { close(fd) }
        try exec(FileDescriptor(rawValue: fd), argdata: argdata,
                 options: options.named(after: executable))
    }

    /// Replaces this process with the program open at `executable` (C's
    /// `program_exec_raw`).
    ///
    /// - Throws: As `spawn` with a descriptor does,
    ///   with this process and its descriptors as they were.
    public static func exec(_ executable: FileDescriptor, argdata: Argdata = .null,
                            options: Options = Options()) throws(Errno) -> Never {
        try launch(executable, argdata, options, pid: nil, pidfd: nil)
        fatalError("program_exec_raw returned without an error")
    }

    /// Checks, without starting anything, that a launch with `argdata`
    /// and `options` would pass the argument checks (C's
    /// `program_args_fit`): for a caller that
    /// must know before a side effect it cannot undo.
    ///
    /// An unnamed program is counted with the longest file name.
    ///
    /// - Throws: `E2BIG` when the tree cannot travel in the argument
    ///   vector, as a launch would decide on this machine now.
    public static func checkArguments(argdata: Argdata,
                                      options: Options = Options()) throws(Errno) {
        // No executable is needed to count: the request's own check.
        try LaunchRequest(FileDescriptor(rawValue: -1), argdata, options).checkFits()
    }

    /// Linux's `O_PATH`, from the C headers (Swift's Glibc lacks it).
    package static let openPath: CInt = fdr_swift_o_path()

    /// `path` opened with `O_PATH` for a launch (execute permission is
    /// enough); no check of its kind or format.
    static func openPathOnly(_ path: FilePath) throws(Errno) -> CInt {
        let fd = path.withPlatformString { open($0, openPath | O_CLOEXEC) }
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        return fd
    }

    /// Serialise the tree, then spawn (`pid` given) or exec: the
    /// configuration form's one crossing into C.
    private static func launch(_ executable: FileDescriptor, _ argdata: Argdata,
                               _ options: Options, pid: UnsafeMutablePointer<pid_t>?,
                               pidfd: UnsafeMutablePointer<CInt>?) throws(Errno) {
        try LaunchRequest(executable, argdata, options).run(pid: pid, pidfd: pidfd)
    }
}

extension Program.Options {
    /// These options, named after the file at `path` when unnamed.
    fileprivate func named(after path: FilePath) -> Self {
        var o = self
        if o.name == nil { o.name = Executable.path(path).defaultName }
        return o
    }
}

/// Strings as one buffer of NUL-terminated C strings and a NULL-ended
/// array of pointers into it, for `envp` and `argv`. The strings hold
/// no NUL (the callers check).
struct CStrings {
    var buffer: [CChar] = []
    var offsets: [Int] = []

    init(_ strings: [[UInt8]]) {
        for s in strings {
            offsets.append(buffer.count)
            buffer.append(contentsOf: s.map { CChar(bitPattern: $0) })
            buffer.append(0)
        }
    }

    func withPointers<R>(_ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var copy = buffer
        return copy.withUnsafeMutableBufferPointer { b in
            let pointers: [UnsafeMutablePointer<CChar>?] =
                offsets.map { b.baseAddress! + $0 } + [nil]
            return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }
}
