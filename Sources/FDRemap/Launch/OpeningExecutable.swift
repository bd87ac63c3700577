import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Program {
    /// Why ``Program/openExecutable(at:)`` refused a program.
    public enum ExecutableError: Error, Hashable, Sendable {
        /// What a path that is not a regular file is.
        public enum FileKind: String, Hashable, Sendable {
            /// A directory.
            case directory
            /// A FIFO (named pipe).
            case fifo
            /// A Unix socket.
            case socket
            /// A character or block device.
            case device
        }

        /// `open(2)` with `O_PATH` failed (or, without `/proc`, the
        /// `fcntl(F_DUPFD_CLOEXEC)` of its descriptor).
        case cannotOpen(Errno)
        /// `fstat(2)` failed.
        case cannotExamine(Errno)
        /// The path is not a regular file.
        case notRegularFile(FileKind)
        /// `pread(2)` of its first bytes failed.
        case cannotRead(Errno)
        /// Readable, and neither ELF nor `#!` (what `execve(2)` refuses
        /// with `ENOEXEC`).
        case unknownFormat
        /// A `#!` script whose interpreter (this path; empty when the
        /// line names none) cannot be run: `access(2)`'s error, or
        /// `ENOEXEC` for no interpreter.
        case interpreterCannotRun(String, Errno)

        /// The error a launch of the program would report: the system's,
        /// `EACCES` for a path that is not a regular file (as `execve(2)`
        /// says), `ENOEXEC` for an unknown format.
        public var errno: Errno {
            switch self {
            case .cannotOpen(let e), .cannotExamine(let e), .cannotRead(let e),
                 .interpreterCannotRun(_, let e):
                return e
            case .notRegularFile: return .permissionDenied
            case .unknownFormat: return .execFormatError
            }
        }
    }

    /// Opens the program at `path` for a launch, and refuses, before
    /// anything runs, what `execve(2)` would refuse for its kind or
    /// format.
    ///
    /// ```swift
    /// let exe = try Program.openExecutable(at: "/usr/bin/env")
    /// defer { try? exe.close() }
    /// let child = try Program.spawn(.descriptor(exe), arguments: ["true"])
    /// ```
    ///
    /// Never blocks: the path is opened with `open(2)` and `O_PATH`
    /// (which opens nothing behind it) and must be a regular file
    /// (`fstat(2)`), so a FIFO, socket or device is refused before
    /// anything reads it. It is then reopened readable through
    /// `/proc/self/fd` (the same file, never one swapped in at the path
    /// meanwhile), so that the program can be handed its own file
    /// (`!executable` in `fdrun`), and its first bytes (`pread(2)`) must
    /// be ELF's, or `#!` naming an interpreter that `access(2)` says can
    /// be executed. Without read permission, or without `/proc`, the
    /// `O_PATH` descriptor is returned unchecked: the launch decides.
    ///
    /// - Returns: A close-on-exec descriptor, readable when it could be,
    ///   else `O_PATH`; the caller's to close.
    /// - Throws: ``ExecutableError``, whose ``ExecutableError/errno`` is
    ///   what the launch would have said.
    public static func openExecutable(at path: FilePath) throws(ExecutableError) -> FileDescriptor {
        let probe = path.withPlatformString { open($0, openPath | O_CLOEXEC) }
        guard probe >= 0 else { throw .cannotOpen(Errno(rawValue: Glibc.errno)) }
        defer { close(probe) }
        var st = stat()
        guard fstat(probe, &st) == 0 else { throw .cannotExamine(Errno(rawValue: Glibc.errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .notRegularFile(.directory)
        case S_IFIFO: throw .notRegularFile(.fifo)
        case S_IFSOCK: throw .notRegularFile(.socket)
        default: throw .notRegularFile(.device)
        }
        // A regular file: no O_NONBLOCK needed, and none left on the
        // descriptor the program may be handed.
        let fd = open("/proc/self/fd/\(probe)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let copy = fcntl(probe, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else { throw .cannotOpen(Errno(rawValue: Glibc.errno)) }
            return FileDescriptor(rawValue: copy)
        }
        do {
            try checkFormat(fd)
        } catch {
            close(fd)
            throw error
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Refuses a readable program that `execve(2)` would refuse with
    /// `ENOEXEC` or `ENOENT`: neither ELF nor `#!`, or a `#!` whose
    /// interpreter is missing.
    private static func checkFormat(_ fd: CInt) throws(ExecutableError) {
        var head = [UInt8](repeating: 0, count: 256)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { throw .cannotRead(Errno(rawValue: Glibc.errno)) }
        let bytes = head[0..<n]
        if bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) { return }
        guard bytes.starts(with: [0x23, 0x21]) else { throw .unknownFormat }
        let line = bytes.dropFirst(2).prefix { $0 != 0x0a }
        let interpreter = line.drop { $0 == 0x20 || $0 == 0x09 }.prefix { $0 != 0x20 && $0 != 0x09 }
        let path = String(decoding: interpreter, as: UTF8.self)
        guard !path.isEmpty else { throw .interpreterCannotRun(path, .execFormatError) }
        guard access(path, X_OK) == 0 else {
            throw .interpreterCannotRun(path, Errno(rawValue: Glibc.errno))
        }
    }
}
