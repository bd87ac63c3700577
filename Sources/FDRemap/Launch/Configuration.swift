import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The program to start: by path, by an open descriptor, or by a name
/// searched in `PATH`.
public enum Executable: Sendable, Hashable {
    /// The file at this path, opened with `O_PATH` (execute permission
    /// is enough) just for the launch.
    case path(FilePath)
    /// A descriptor of the program, open for reading or with `O_PATH`,
    /// not for writing; the caller's to close. It need not be passed.
    case descriptor(FileDescriptor)
    /// A file name (no `/`) searched in the directories of `PATH`, in
    /// order, as `execvp(3)` does: the first regular file that this
    /// process may execute. `PATH` is the one of the program's
    /// environment (``Program/Environment``), else this process's, else
    /// `/usr/local/bin:/usr/bin:/bin`; an empty entry is the working
    /// directory. Files that are not executable are skipped.
    case name(String)

    /// The `argv[0]` a launch gives this executable when the
    /// configuration names none: a path's last component (the path
    /// itself when it has none), a name as it is; `nil` for a descriptor,
    /// whose name the launcher reads from `/proc/self/fd` at the launch
    /// (C's `pa_name` left `NULL`).
    public var defaultName: String? {
        switch self {
        case .path(let p): return p.lastComponent?.string ?? p.string
        case .name(let n): return n
        case .descriptor: return nil
        }
    }
}

/// The program's arguments: an argdata tree, the CloudABI way, or plain
/// strings for an ordinary program.
public enum Arguments: Sendable {
    /// The tree as `argv[1...]` (see ``Program``); the program's
    /// descriptor `i` is the tree's `i`-th distinct descriptor.
    case argdata(Argdata)
    /// `argv[1...]` as these strings, and the program's descriptor `i`
    /// as `descriptors[i]` of this process, for every `i`; no other.
    /// A string with a NUL inside is refused (`EINVAL`).
    case strings([String], descriptors: [FileDescriptor])
    /// `argv[1...]` as these strings, `standardIO` as the program's 0, 1
    /// and 2, the sockets at 3, 4, ..., and systemd's `LISTEN_FDS`,
    /// `LISTEN_FDNAMES` and `LISTEN_PID` in its environment: see
    /// ``socketActivation(_:sockets:standardIO:)``, the short way to
    /// write it.
    case socketActivated([String], sockets: [ListeningSocket], standardIO: StandardIO)
}

extension Arguments: ExpressibleByArrayLiteral {
    /// Plain strings, with this process's standard input, output and
    /// error as the program's descriptors 0, 1 and 2.
    public init(arrayLiteral elements: String...) {
        self = .strings(elements, descriptors: [.standardInput, .standardOutput,
                                                 .standardError])
    }
}

extension Program {
    /// The program's environment.
    ///
    /// ```swift
    /// let env = Program.Environment.inherit.updating(["LANG": "C", "HOME": nil])
    /// ```
    ///
    /// A name or value with a NUL inside, an empty name or one with an
    /// `=`, is refused with `EINVAL` when the program is started: never
    /// cut short.
    public struct Environment: Sendable, Hashable {
        private enum Base: Sendable, Hashable {
            case inherit
            case custom([String])
        }

        private var base: Base
        private var changes: [String: String?] = [:]

        private init(_ base: Base) {
            self.base = base
        }

        /// This process's environment, as it is when the program starts.
        public static var inherit: Environment { Environment(.inherit) }

        /// No variable at all (CloudABI's default).
        public static var empty: Environment { Environment(.custom([])) }

        /// Exactly these variables.
        public static func custom(_ variables: [String: String]) -> Environment {
            Environment(.custom([])).updating(variables.mapValues { Optional($0) })
        }

        /// Exactly these `NAME=value` strings, in this order.
        public static func custom(_ entries: [String]) -> Environment {
            Environment(.custom(entries))
        }

        /// Whether `entry` is a variable as ``custom(_:)-([String])`` takes it:
        /// `NAME=value` with a name that is not empty, and no NUL
        /// anywhere. A launch refuses any other with `EINVAL`.
        public static func isValidEntry(_ entry: String) -> Bool {
            isValidEntry(Array(entry.utf8))
        }

        static func isValidEntry(_ b: [UInt8]) -> Bool {
            !b.contains(0) && (b.firstIndex(of: UInt8(ascii: "=")) ?? 0) > 0
        }

        /// This environment with `changes`: a value sets its variable,
        /// `nil` removes it.
        public func updating(_ changes: [String: String?]) -> Environment {
            var e = self
            e.changes.merge(changes) { $1 }
            return e
        }

        /// The entries as bytes (`NAME=value`), checked.
        func resolved() throws(Errno) -> [[UInt8]] {
            var entries: [[UInt8]]
            switch base {
            case .inherit:
                entries = []
                var p = environ
                while let s = p.pointee {
                    entries.append(Array(UnsafeRawBufferPointer(start: s, count: strlen(s))))
                    p += 1
                }
            case .custom(let list):
                entries = try list.map { s throws(Errno) in
                    let b = Array(s.utf8)
                    guard Self.isValidEntry(b) else { throw .invalidArgument }
                    return b
                }
            }
            guard !changes.isEmpty else { return entries }
            for (name, value) in changes {
                let key = Array(name.utf8)
                guard !key.isEmpty, !key.contains(0), !key.contains(UInt8(ascii: "=")),
                      !(value?.utf8.contains(0) ?? false) else { throw .invalidArgument }
                let prefix = key + [UInt8(ascii: "=")]
                entries.removeAll { $0.starts(with: prefix) }
            }
            for (name, value) in changes.sorted(by: { $0.key < $1.key }) {
                if let value { entries.append(Array("\(name)=\(value)".utf8)) }
            }
            return entries
        }
    }

    /// The program's working directory.
    public enum WorkingDirectory: Sendable, Hashable {
        /// This path (relative to this process's working directory).
        case path(FilePath)
        /// The directory open at this descriptor (`O_PATH` will do); it
        /// need not be passed and is not kept.
        case descriptor(FileDescriptor)
    }

    /// A new session or process group for the program.
    public enum ProcessGroup: Sendable, Hashable {
        /// A new session (`setsid`), of which the program leads a new
        /// process group; it has no controlling terminal.
        case newSession
        /// A new process group led by the program (`setpgid(0, 0)`).
        case newGroup
        /// The existing process group with this ID (`setpgid(0, id)`),
        /// in this process's session.
        case join(Int32)
    }

    /// Everything about a launch: what to run, with what, where.
    ///
    /// ```swift
    /// var config = Program.Configuration(.name("python3"),
    ///                                    arguments: ["-c", "print('hi')"])
    /// config.environment = .inherit.updating(["PYTHONUNBUFFERED": "1"])
    /// config.workingDirectory = .path("/tmp")
    /// config.processGroup = .newGroup
    /// let end = try await Program.spawn(config).wait()
    /// ```
    ///
    /// In every form the program gets exactly the descriptors the
    /// arguments name and no other.
    public struct Configuration: Sendable {
        /// The program.
        public var executable: Executable
        /// Its arguments, and through them its descriptors.
        public var arguments: Arguments
        /// Its environment; empty by default, as CloudABI gave it.
        public var environment: Environment
        /// `argv[0]`; `nil` gives the executable's file name.
        public var name: String?
        /// Its working directory; `nil` keeps this process's.
        public var workingDirectory: WorkingDirectory?
        /// A new session or process group; `nil` keeps this process's.
        public var processGroup: ProcessGroup?

        /// A configuration with these values.
        public init(_ executable: Executable, arguments: Arguments = .argdata(.null),
                    environment: Environment = .empty, name: String? = nil,
                    workingDirectory: WorkingDirectory? = nil,
                    processGroup: ProcessGroup? = nil) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.name = name
            self.workingDirectory = workingDirectory
            self.processGroup = processGroup
        }
    }

    /// Starts the program of `configuration` as a child process.
    ///
    /// One call into C's `program_spawn_raw`, with the configuration as
    /// its `program_attr`.
    ///
    /// - Returns: The child, to wait for (or to drop: it is then reaped
    ///   in the background when it ends, never killed).
    /// - Throws: `EINVAL` for a NUL inside a string (an argument, the
    ///   name, the environment) or a bad environment name; for a
    ///   ``Executable/name(_:)``, `ENOENT` when no directory of `PATH`
    ///   has it, `EACCES` when none may be executed, `EINVAL` for a name
    ///   with a `/`; from the child, before the program runs: `chdir`'s
    ///   and `fchdir`'s errors (`ENOENT`, `ENOTDIR`, `EACCES`, `EBADF`),
    ///   `setpgid`'s (`EPERM`, `ESRCH`), and every error of the
    ///   argdata forms of `spawn`.
    public static func spawn(_ configuration: Configuration) throws(Errno) -> ChildProcess {
        var pid: pid_t = -1
        var pidfd: CInt = -1
        try LaunchRequest(configuration).run(pid: &pid, pidfd: &pidfd)
        return ChildProcess(pid: pid, pidfd: pidfd)
    }

    /// Starts `executable` as a child process: ``spawn(_:)`` of the
    /// ``Configuration`` these values make.
    ///
    /// ```swift
    /// let child = try Program.spawn(.name("ls"), arguments: ["-l"],
    ///                               environment: .inherit)
    /// ```
    public static func spawn(_ executable: Executable, arguments: Arguments,
                             environment: Environment = .empty,
                             workingDirectory: WorkingDirectory? = nil,
                             processGroup: ProcessGroup? = nil) throws(Errno) -> ChildProcess {
        try spawn(Configuration(executable, arguments: arguments, environment: environment,
                                workingDirectory: workingDirectory, processGroup: processGroup))
    }

    /// Replaces this process (its ID stays) with the program of
    /// `configuration`: one call into C's `program_exec_raw`.
    ///
    /// - Throws: As ``spawn(_:)``, with this process and its descriptors
    ///   as they were; `EINVAL` for a ``Configuration/processGroup`` (it could not
    ///   be undone if the exec failed: call `setsid` or `setpgid`
    ///   first).
    public static func exec(_ configuration: Configuration) throws(Errno) -> Never {
        try LaunchRequest(configuration).run(pid: nil, pidfd: nil)
        fatalError("program_exec_raw returned without an error")
    }

    /// Checks, without opening or starting anything, that a launch of
    /// `configuration` would pass the argument checks (C's
    /// `program_args_fit`): for a caller that must know before a side
    /// effect it cannot undo, as `fdrun` does before it empties a file.
    ///
    /// A program named by a descriptor is counted with the longest file
    /// name; socket activation's `LISTEN_PID` with ten digits.
    ///
    /// - Throws: `E2BIG` when the arguments and environment cannot
    ///   travel, as a launch would decide on this machine now; `EINVAL`
    ///   as ``spawn(_:)`` (a NUL inside a string, a bad environment
    ///   entry or socket name).
    public static func checkArguments(_ configuration: Configuration) throws(Errno) {
        try LaunchRequest(configuration, opening: false).checkFits()
    }
}

/// A launch in the form C takes: the executable open, the data or the
/// plain vector, the descriptors, the C strings; one crossing into C.
struct LaunchRequest {
    var execfd: CInt = -1
    var ownsExec = false
    var data: [UInt8] = []
    var fds: [CInt] = []
    var name: [UInt8]?
    var argv: [[UInt8]]?
    var env: [[UInt8]] = []
    var cwdPath: [UInt8]?
    var cwdfd: CInt?
    var group: Program.ProcessGroup?
    /// Socket activation: the child writes `LISTEN_PID`.
    var listenPID = false

    /// The request of `c`; `opening`: the executable opened (or found in
    /// `PATH`), else left at -1, for ``checkFits()``.
    init(_ c: Program.Configuration, opening: Bool = true) throws(Errno) {
        env = try c.environment.resolved()
        if let n = c.name { name = try checked(n) }
        switch c.arguments {
        case .argdata(let tree):
            let (bytes, list) = tree.serialize()
            data = bytes
            fds = list.map(\.rawValue)
        case .strings(let strings, let descriptors):
            argv = try strings.map { s throws(Errno) in try checked(s) }
            fds = descriptors.map(\.rawValue)
        case .socketActivated(let strings, let sockets, let io):
            argv = try strings.map { s throws(Errno) in try checked(s) }
            fds = [io.input, io.output, io.error].map(\.rawValue)
                + sockets.map(\.descriptor.rawValue)
            env = try Program.Environment.activated(env, sockets)
            listenPID = true
        }
        switch c.workingDirectory {
        case .path(let p)?: cwdPath = try checked(p.string)
        case .descriptor(let d)?: cwdfd = d.rawValue
        case nil: break
        }
        group = c.processGroup
        if name == nil, let n = c.executable.defaultName { name = try checked(n) }
        switch c.executable {
        case .descriptor(let d):
            execfd = d.rawValue
        case .path(let p) where opening:
            execfd = try Program.openPathOnly(p)
            ownsExec = true
        case .name(let n) where opening:
            execfd = try searchPath(n, env: env)
            ownsExec = true
        case .path, .name:
            break
        }
    }

    /// Whether the request's strings fit (`program_args_fit`), counted as
    /// the launch will count them; E2BIG if not.
    func checkFits() throws(Errno) {
        // A plain vector goes NUL-joined as the data, argv[0] first, with
        // a name of "" (program.h); an unknown argv[0] as the longest.
        let bytes = argv.map { v in
            ([name ?? Array(repeating: UInt8(ascii: "x"), count: Int(NAME_MAX))] + v)
                .joined(separator: [0]).map { $0 }
        } ?? data
        let vectorName: [UInt8]? = argv == nil ? name : []
        // PROGRAM_LISTEN_PID's entry at its longest (host_listen.c).
        let all = listenPID ? env + [Array("LISTEN_PID=0000000000".utf8)] : env
        let error = CStrings(all).withPointers { envp in
            withOptionalBytes(vectorName) { namep in
                bytes.withUnsafeBytes { program_args_fit($0.baseAddress, $0.count, namep, envp) }
            }
        }
        guard error == 0 else { throw Errno(rawValue: error) }
    }

    /// The argdata form of `Program.spawn(_:argdata:options:)`: the tree
    /// and its descriptors, the name, and `NAME=value` strings taken as
    /// they are (only a NUL is refused, as `Options` promises).
    init(_ executable: FileDescriptor, _ argdata: Argdata,
         _ options: Program.Options) throws(Errno) {
        execfd = executable.rawValue
        let (bytes, list) = argdata.serialize()
        data = bytes
        fds = list.map(\.rawValue)
        if let n = options.name { name = try checked(n) }
        env = try options.environment.map { s throws(Errno) in try checked(s) }
    }

    /// Spawn (`pid` given) or exec; closes what it opened either way.
    func run(pid: UnsafeMutablePointer<pid_t>?,
             pidfd: UnsafeMutablePointer<CInt>?) throws(Errno) {
        defer { if ownsExec { close(execfd) } }
        // With a plain vector, argv[0] is the name: the fd's file name
        // when none was given (the data form's rule), else "program".
        let vector = argv.map { [name ?? fdName(execfd) ?? Array("program".utf8)] + $0 }
        var flags: UInt32 = 0
        var pgroup: pid_t = 0
        switch group {
        case .newSession?: flags |= UInt32(PROGRAM_SETSID)
        case .newGroup?: flags |= UInt32(PROGRAM_SETPGROUP)
        case .join(let g)?: flags |= UInt32(PROGRAM_SETPGROUP); pgroup = g
        case nil: break
        }
        if cwdfd != nil { flags |= UInt32(PROGRAM_CWDFD) }
        if listenPID { flags |= UInt32(PROGRAM_LISTEN_PID) }
        let envs = CStrings(env), args = CStrings(vector ?? [])
        let error = envs.withPointers { envp in
            args.withPointers { argvp in
                withOptionalBytes(name) { namep in
                    withOptionalBytes(cwdPath) { cwdp in
                        var attr = program_attr()
                        attr.pa_name = namep
                        attr.pa_envp = envp
                        attr.pa_argv = vector == nil ? nil : argvp
                        attr.pa_pidfd = pidfd
                        attr.pa_cwd = cwdp
                        attr.pa_cwdfd = cwdfd ?? -1
                        attr.pa_flags = flags
                        attr.pa_pgroup = pgroup
                        var none = sigset_t()
                        sigemptyset(&none)
                        return withUnsafePointer(to: &none) { mask in
                            attr.pa_sigmask = UnsafeRawPointer(mask)
                            return data.withUnsafeBytes { b in
                                fds.withUnsafeBufferPointer { f in
                                    if let pid {
                                        return program_spawn_raw(execfd, b.baseAddress, b.count,
                                                                 f.baseAddress, f.count, &attr, pid)
                                    }
                                    return program_exec_raw(execfd, b.baseAddress, b.count,
                                                            f.baseAddress, f.count, &attr)
                                }
                            }
                        }
                    }
                }
            }
        }
        guard error == 0 else { throw Errno(rawValue: error) }
    }
}

/// The UTF-8 of `s`, refused (`EINVAL`) with a NUL inside.
private func checked(_ s: String) throws(Errno) -> [UInt8] {
    let b = Array(s.utf8)
    guard !b.contains(0) else { throw .invalidArgument }
    return b
}

/// The last part of the path `fd` was opened by, from /proc/self/fd.
private func fdName(_ fd: CInt) -> [UInt8]? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
    let n = readlink("/proc/self/fd/\(fd)", &buf, buf.count - 1)
    guard n > 0, buf[0] == CChar(UInt8(ascii: "/")) else { return nil }
    let bytes = buf[0..<n].map { UInt8(bitPattern: $0) }
    return Array(bytes.split(separator: UInt8(ascii: "/")).last ?? [])
}

/// Opens `name` found in `PATH` (see ``Executable/name(_:)``) with
/// `O_PATH`; the descriptor, or ENOENT, EACCES, EINVAL.
private func searchPath(_ name: String, env: [[UInt8]]) throws(Errno) -> CInt {
    let n = try checked(name)
    guard !n.isEmpty, !n.contains(UInt8(ascii: "/")) else { throw .invalidArgument }
    let prefix = Array("PATH=".utf8)
    let path: [UInt8]
    if let e = env.last(where: { $0.starts(with: prefix) }) {
        path = Array(e.dropFirst(prefix.count))
    } else if let p = getenv("PATH") {
        path = Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    } else {
        path = Array("/usr/local/bin:/usr/bin:/bin".utf8)
    }
    var denied = false
    for dir in path.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false) {
        let candidate = (dir.isEmpty ? Array(".".utf8) : Array(dir)) + [UInt8(ascii: "/")] + n
        let fd = (candidate + [0]).withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { c in
                access(c.baseAddress!, X_OK) == 0
                    ? open(c.baseAddress!, Program.openPath | O_CLOEXEC) : -2
            }
        }
        if fd == -2 {
            if errno == EACCES { denied = true }
            continue
        }
        guard fd >= 0 else { continue }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { return fd }
        close(fd)
        denied = true
    }
    throw denied ? .permissionDenied : .noSuchFileOrDirectory
}

/// `body` with `bytes` as a NUL-terminated C string, or with nil.
private func withOptionalBytes<R>(_ bytes: [UInt8]?,
                                  _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return (bytes + [0]).withUnsafeBufferPointer { b in
        b.withMemoryRebound(to: CChar.self) { body($0.baseAddress) }
    }
}
