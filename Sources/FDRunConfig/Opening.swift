import FDRemap
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The descriptors this process had when it started, which `!fd` may
/// name: a descriptor `fdrun` opened itself (its configuration, a
/// library's) must not reach the program by a guessed number.
package struct InheritedDescriptors: Sendable {
    /// The open descriptors at the time of the snapshot.
    package let numbers: Set<CInt>

    /// The descriptors open now. Call it first thing in `main`.
    ///
    /// Reads `/proc/self/fd` (leaving out the descriptor of the directory
    /// being read); without `/proc`, asks `fcntl(F_GETFD)` of every number
    /// below the soft `RLIMIT_NOFILE` (at most 65,536 of them).
    package static func snapshot() -> InheritedDescriptors {
        if let dir = opendir("/proc/self/fd") {
            defer { closedir(dir) }
            let own = dirfd(dir)
            var found = Set<CInt>()
            while let entry = readdir(dir) {
                // d_name is as long as the name, not 256 bytes: read to its NUL.
                let name = String(cString: UnsafeRawPointer(entry)
                    .advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
                    .assumingMemoryBound(to: CChar.self))
                if let n = CInt(name), n != own { found.insert(n) }
            }
            return InheritedDescriptors(numbers: found)
        }
        var limit = rlimit()
        getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
        let top = CInt(clamping: min(limit.rlim_cur, 65_536))
        return InheritedDescriptors(numbers: Set((0..<top).filter { fcntl($0, F_GETFD) != -1 }))
    }

    /// A snapshot with the given numbers (for tests).
    package init(numbers: Set<CInt>) {
        self.numbers = numbers
    }
}

/// The descriptors of a plan, opened: `descriptors[i]` is the program's
/// descriptor `i`.
///
/// Until ``keep()``, the owner of everything opened is this object: when
/// it goes (an error before the program started, or a failed launch) it
/// closes every descriptor it opened and removes every file it created (a
/// `!file` opened for writing that did not exist, a Unix socket it bound),
/// so a failed `fdrun` leaves nothing behind. Inherited
/// descriptors are never closed.
package final class OpenedDescriptors {
    /// One descriptor per source of the plan.
    package private(set) var descriptors: [FileDescriptor] = []
    private var owned: [CInt] = []
    private var createdFiles: [String] = []
    /// Files opened for `mode: write` that existed: emptied only by
    /// ``truncate()``, once nothing else can fail.
    private var toTruncate: [(CInt, String, SourceLocation)] = []

    /// Opens, binds and connects what `plan` names, in order, stopping at
    /// the first failure (and undoing what was done).
    ///
    /// - Parameters:
    ///   - plan: The plan.
    ///   - executable: The program's descriptor, for `!executable`.
    ///   - inherited: What this process had when it started, for `!fd`.
    /// - Throws: ``ConfigurationError`` at the tag that failed, with the
    ///   path, address or number and the system's reason.
    package init(_ plan: Plan, executable: FileDescriptor,
                inherited: InheritedDescriptors) throws(ConfigurationError) {
        for source in plan.sources {
            let fd: CInt
            switch source.kind {
            case .inherited(let n):
                try Self.checkInherited(n, inherited, source.location)
                fd = n
            case .executable:
                fd = executable.rawValue
            case .file(let path, let mode):
                let (f, created) = try Self.open(path, mode, source.location)
                if let created { createdFiles.append(created) }
                if mode == .write && created == nil { toTruncate.append((f, path, source.location)) }
                fd = own(f)
            case .socket(let spec):
                fd = try own(socket(spec, source.location))
            }
            descriptors.append(FileDescriptor(rawValue: fd))
        }
    }

    deinit {
        for fd in owned { close(fd) }
        for path in createdFiles { unlink(path) }
    }

    /// Empties the existing files opened for `mode: write`, as a shell's
    /// `>` would. Call it last, after every check that can fail, just
    /// before the program starts: a failure before it leaves every
    /// existing file as it was.
    ///
    /// - Throws: ``ConfigurationError`` naming the file that could not be
    ///   emptied (the files before it in the plan are already empty).
    package func truncate() throws(ConfigurationError) {
        for (fd, path, location) in toTruncate {
            var r: CInt
            repeat { r = ftruncate(fd, 0) } while r != 0 && errno == EINTR
            guard r == 0 else {
                throw ConfigurationError(location, "!file: cannot truncate \(quoted(path)): \(Errno(rawValue: errno))")
            }
        }
        toTruncate = []
    }

    /// The program has started with these descriptors: closing them and
    /// removing the files is no longer this object's business.
    package func keep() {
        owned = []
        createdFiles = []
    }

    private func own(_ fd: CInt) -> CInt {
        owned.append(fd)
        return fd
    }

    /// `!fd N`: N must have been open when this process started (and be
    /// open still).
    package static func checkInherited(_ n: CInt, _ inherited: InheritedDescriptors,
                                      _ at: SourceLocation) throws(ConfigurationError) {
        let name = n < 3 ? " (\(["stdin", "stdout", "stderr"][Int(n)]))" : ""
        guard fcntl(n, F_GETFD) != -1 else {
            throw ConfigurationError(at, "!fd \(n)\(name): descriptor \(n) is not open (fdrun did not inherit it)")
        }
        guard inherited.numbers.contains(n) else {
            throw ConfigurationError(at, "!fd \(n)\(name): descriptor \(n) was not open when fdrun started (fdrun opened it itself)")
        }
    }

    /// `!file`: never blocks (a FIFO without a writer opens at once) and
    /// never becomes a controlling terminal. Also tells which file it
    /// created, if any (the mode allows it and it did not exist): `path`,
    /// or, as a shell's `>` does, the missing target of a dangling
    /// symbolic link at `path`.
    static func open(_ path: String, _ mode: FileMode,
                     _ at: SourceLocation) throws(ConfigurationError) -> (CInt, String?) {
        var flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK
        switch mode {
        case .read: flags |= O_RDONLY
        // Not O_TRUNC: an existing file is emptied by truncate(), last.
        case .write: flags |= O_WRONLY | O_CREAT
        case .append: flags |= O_WRONLY | O_CREAT | O_APPEND
        case .readwrite: flags |= O_RDWR | O_CREAT
        }
        var fd = Glibc.open(path, flags & ~O_CREAT)
        var created: String?
        if fd < 0 && errno == ENOENT && flags & O_CREAT != 0 {
            (fd, created) = createFollowing(path, flags)
        }
        guard fd >= 0 else {
            throw ConfigurationError(at, "!file: cannot open \(quoted(path)) for \(mode.rawValue): \(Errno(rawValue: errno))")
        }
        // The program gets an ordinary blocking descriptor.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, created)
    }

    /// Creates the file at `path` with `O_EXCL` (so that it is known to be
    /// new, and can be removed again if the run fails); where `path` is a
    /// dangling symbolic link, creates its target instead, following up
    /// to 40 links as the kernel would. The descriptor (-1 with errno)
    /// and the path created.
    private static func createFollowing(_ path: String, _ flags: CInt) -> (CInt, String?) {
        var target = path
        for _ in 0..<40 {
            let fd = Glibc.open(target, flags | O_EXCL, 0o666)
            if fd >= 0 { return (fd, target) }
            guard errno == EEXIST, let next = linkTarget(target) else { return (-1, nil) }
            target = next
        }
        errno = ELOOP
        return (-1, nil)
    }

    /// Where the symbolic link at `path` points, relative to its
    /// directory; nil (errno set) when `path` is not a link.
    private static func linkTarget(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else {
            if errno == EINVAL { errno = EEXIST }    // not a link: it exists
            return nil
        }
        // A target that is not UTF-8 is not followed (it could not be
        // named exactly): the create fails as it did, with EEXIST.
        guard let link = String(validating: buf[..<n].map { UInt8(bitPattern: $0) },
                                as: UTF8.self) else {
            errno = EEXIST
            return nil
        }
        if link.hasPrefix("/") { return link }
        let dir = path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
        return dir + link
    }

    /// connect(2) that never hangs on a server that does not accept: a
    /// Unix socket whose listen queue is full fails at once (EAGAIN)
    /// where a blocking connect would wait for an accept forever; a TCP
    /// handshake is waited for (the kernel ends it with its own timeout),
    /// its EINTR no reason to connect twice. Blocking again after.
    private func connectNonBlocking(_ fd: CInt, _ sa: UnsafePointer<sockaddr>, _ len: socklen_t,
                                    _ family: CInt,
                                    _ fail: (String) -> ConfigurationError) throws(ConfigurationError) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, sa, len) != 0 {
            if errno == EAGAIN && family == AF_UNIX {
                throw fail("cannot connect (the server's listen queue is full)")
            }
            guard errno == EINPROGRESS || errno == EINTR else { throw fail("cannot connect") }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while poll(&p, 1, -1) < 0 && errno == EINTR {}
            var error: CInt = 0
            var size = socklen_t(MemoryLayout<CInt>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
            if error != 0 {
                errno = error
                throw fail("cannot connect")
            }
        }
        _ = fcntl(fd, F_SETFL, flags)
    }

    /// `!socket`: created, then bound (and listening, for stream and
    /// seqpacket) or connected. A name is resolved first
    /// (``SocketSpec/addresses(at:)``), and its addresses are tried in
    /// order: the first that works is taken; if none does, the first
    /// one's error is reported.
    private func socket(_ spec: SocketSpec, _ at: SourceLocation) throws(ConfigurationError) -> CInt {
        var first: ConfigurationError?
        for address in try spec.addresses(at: at) {
            do {
                return try socket(spec, address, at)
            } catch {
                if first == nil { first = error }
            }
        }
        throw first!
    }

    /// One socket of `spec`, at `address` (a literal one).
    private func socket(_ spec: SocketSpec, _ address: SocketAddress,
                        _ at: SourceLocation) throws(ConfigurationError) -> CInt {
        let type: CInt
        switch spec.kind {
        case .stream: type = CInt(SOCK_STREAM.rawValue)
        case .dgram: type = CInt(SOCK_DGRAM.rawValue)
        case .seqpacket: type = CInt(SOCK_SEQPACKET.rawValue)
        }
        let shown = address == spec.address ? "\(address)" : "\(spec.address) (\(address))"
        let what = "!socket \(spec.role.rawValue) \(shown) (\(spec.kind.rawValue))"
        return try address.withSockaddr { sa, len, family throws(ConfigurationError) in
            let fd = Glibc.socket(family, type | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                throw ConfigurationError(at, "\(what): cannot create the socket: \(Errno(rawValue: errno))")
            }
            var ok = false
            defer { if !ok { close(fd) } }
            func fail(_ step: String) -> ConfigurationError {
                ConfigurationError(at, "\(what): \(step): \(Errno(rawValue: errno))")
            }
            switch spec.role {
            case .bind:
                if family != AF_UNIX {
                    var on: CInt = 1
                    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<CInt>.size))
                }
                guard bind(fd, sa, len) == 0 else { throw fail("cannot bind") }
                if case .unix(let path) = address { createdFiles.append(path) }
                if spec.kind != .dgram {
                    guard listen(fd, SOMAXCONN) == 0 else { throw fail("cannot listen") }
                }
            case .connect:
                try connectNonBlocking(fd, sa, len, family, fail)
            }
            ok = true
            return fd
        }
    }
}

extension SocketSpec {
    /// The addresses to open this socket at, in order: a literal address
    /// alone; for a ``SocketAddress/name(host:service:)``, what
    /// getaddrinfo(3) gives for the socket's type (`SOCK_DGRAM` for
    /// dgram, else `SOCK_STREAM`) in ``family`` (either when `nil`), with
    /// `AI_ADDRCONFIG` (no IPv6 address where this host has none) and,
    /// when that finds nothing, once more without it (a host with only
    /// loopback addresses still resolves `localhost`); IPv4 and IPv6
    /// only, each once. The one system call of a plan that may ask the
    /// network: made when the socket is opened and by a dry run, never
    /// by ``Plan/init(parsing:file:limits:)``.
    ///
    /// - Throws: ``ConfigurationError`` at `at` naming the name and
    ///   gai_strerror(3)'s reason.
    package func addresses(at: SourceLocation) throws(ConfigurationError) -> [SocketAddress] {
        guard case .name(let host, let service) = address else { return [address] }
        var hints = addrinfo()
        hints.ai_family = family == .inet ? AF_INET : family == .inet6 ? AF_INET6 : AF_UNSPEC
        hints.ai_socktype = CInt(kind == .dgram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG | (role == .bind ? AI_PASSIVE : 0)
        var list: UnsafeMutablePointer<addrinfo>?
        var rc = getaddrinfo(host, service, &hints, &list)
        // glibc's EAI_NODATA (-5) and EAI_ADDRFAMILY (-9), which its
        // headers declare only under _GNU_SOURCE.
        if rc == EAI_NONAME || rc == -5 || rc == -9 {
            hints.ai_flags &= ~AI_ADDRCONFIG
            rc = getaddrinfo(host, service, &hints, &list)
        }
        guard rc == 0, let list else {
            let reason = rc == EAI_SYSTEM ? "\(Errno(rawValue: errno))" : String(cString: gai_strerror(rc))
            throw ConfigurationError(at, "!socket \(role.rawValue) \(address) (\(kind.rawValue)): cannot resolve \(quoted("\(address)")): \(reason)")
        }
        defer { freeaddrinfo(list) }
        var found: [SocketAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let ai = next {
            next = ai.pointee.ai_next
            guard let sa = ai.pointee.ai_addr else { continue }
            let a: SocketAddress
            switch ai.pointee.ai_family {
            case AF_INET:
                let sin = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                a = .inet(withUnsafeBytes(of: sin.sin_addr) { Array($0) },
                          port: UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                a = .inet6(withUnsafeBytes(of: sin6.sin6_addr) { Array($0) },
                           port: UInt16(bigEndian: sin6.sin6_port))
            default:
                continue
            }
            if !found.contains(a) { found.append(a) }
        }
        guard !found.isEmpty else {
            throw ConfigurationError(at, "!socket \(role.rawValue) \(address) (\(kind.rawValue)): cannot resolve \(quoted("\(address)")): no IPv4 or IPv6 address")
        }
        return found
    }
}

extension Plan {
    /// For a dry run: the first address of each source whose
    /// `!socket` names a host or service, by source index (see
    /// ``SocketSpec/addresses(at:)``, which it calls).
    ///
    /// - Throws: ``ConfigurationError`` for the first name that cannot be
    ///   resolved.
    package func resolvedNames() throws(ConfigurationError) -> [Int: SocketAddress] {
        var out: [Int: SocketAddress] = [:]
        for (i, source) in sources.enumerated() {
            guard case .socket(let spec) = source.kind, case .name = spec.address else { continue }
            out[i] = try spec.addresses(at: source.location)[0]
        }
        return out
    }
}

extension SocketAddress {
    /// body with this address as a `sockaddr`, its length and family.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t, CInt) throws(ConfigurationError) -> R)
        throws(ConfigurationError) -> R
    {
        var storage = sockaddr_storage()
        let len: Int
        let family: CInt
        /// The family, the port (where sockaddr_in and sockaddr_in6 both
        /// keep it) and the address at its offset.
        func fill(_ family: CInt, _ port: UInt16?, _ address: [UInt8], at offset: Int) {
            withUnsafeMutableBytes(of: &storage) { raw in
                raw.storeBytes(of: sa_family_t(family), as: sa_family_t.self)
                if let port {
                    raw.storeBytes(of: port.bigEndian,
                                   toByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!,
                                   as: UInt16.self)
                }
                for (i, b) in address.enumerated() { raw[offset + i] = b }
            }
        }
        switch self {
        case .unix(let path):
            family = AF_UNIX
            let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
            fill(AF_UNIX, nil, Array(path.utf8), at: offset)
            len = offset + path.utf8.count + 1
        case .inet(let a, let port):
            family = AF_INET
            fill(AF_INET, port, a, at: MemoryLayout<sockaddr_in>.offset(of: \.sin_addr)!)
            len = MemoryLayout<sockaddr_in>.size
        case .inet6(let a, let port):
            family = AF_INET6
            fill(AF_INET6, port, a, at: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_addr)!)
            len = MemoryLayout<sockaddr_in6>.size
        case .name:
            preconditionFailure("a name is resolved (SocketSpec.addresses) before it is used")
        }
        return try withUnsafePointer(to: &storage) { p throws(ConfigurationError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(ConfigurationError) in
                try body(sa, socklen_t(len), family)
            }
        }
    }
}
