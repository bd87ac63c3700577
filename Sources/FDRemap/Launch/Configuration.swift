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
                    guard !b.contains(0), b.contains(UInt8(ascii: "=")) else {
                        throw .invalidArgument
                    }
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
    /// `configuration`.
    ///
    /// - Throws: As ``spawn(_:)``, with this process and its descriptors
    ///   as they were; `EINVAL` for a ``Configuration/processGroup`` (it could not
    ///   be undone if the exec failed: call `setsid` or `setpgid`
    ///   first).
    public static func exec(_ configuration: Configuration) throws(Errno) -> Never {
        try LaunchRequest(configuration).run(pid: nil, pidfd: nil)
        fatalError("program_exec_raw returned without an error")
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

    init(_ c: Program.Configuration) throws(Errno) {
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
        }
        switch c.workingDirectory {
        case .path(let p)?: cwdPath = try checked(p.string)
        case .descriptor(let d)?: cwdfd = d.rawValue
        case nil: break
        }
        group = c.processGroup
        switch c.executable {
        case .descriptor(let d):
            execfd = d.rawValue
        case .path(let p):
            if name == nil { name = Array((p.lastComponent?.string ?? p.string).utf8) }
            execfd = try Program.openExecutable(p)
            ownsExec = true
        case .name(let n):
            if name == nil { name = try checked(n) }
            execfd = try searchPath(n, env: env)
            ownsExec = true
        }
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
