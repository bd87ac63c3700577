import SystemPackage
internal import CArgdata
internal import CFDRemapHost

extension Argdata {
    /// The tree this program was started with by ``Program`` (or by C's
    /// `program_spawn`), in which every descriptor is this process's own
    /// number.
    ///
    /// The launcher passes the tree's bytes as `argv[1...]`, split at each
    /// NUL byte; this joins them again from the raw argument vector (not
    /// from `CommandLine.arguments`, whose strings are repaired UTF-8)
    /// through C's `program_getargdata`, which reads descriptor index `i`
    /// as descriptor `i`. A program started without arguments gets
    /// ``null``.
    ///
    /// - Throws: As ``init(decoding:fds:)`` for arguments that are not
    ///   argdata (`EINVAL`, `EILSEQ`, `ERANGE`, `E2BIG`), or `ENOMEM`.
    public static func current() throws(Errno) -> Argdata {
        var tree: OpaquePointer? = nil
        let error = program_getargdata(CommandLine.argc, CommandLine.unsafeArgv, &tree)
        guard error == 0, let tree else { throw Errno(rawValue: error) }
        // Serialised again, the descriptors come out listed: index j of
        // these bytes is descriptor fds[j] of this process.
        let (bytes, fds) = serialized(tree)
        return try Argdata(decoding: bytes, fds: fds)
    }
}
