import FDRemap
import SystemPackage

/// What `fdrun` will do, read from a YAML configuration: the program's
/// argdata and, for each descriptor the program gets, where it comes from.
///
/// Making a plan is pure: ``init(parsing:file:limits:)`` reads bytes and
/// opens, binds or checks nothing, so it can be tested (and fuzzed) on
/// any input. ``OpenedDescriptors`` then opens what the plan names.
///
/// In ``argdata`` every descriptor is a placeholder: `.fd(i)` stands for
/// the program's descriptor `i`, which comes from ``sources``[`i`].
/// Sources are listed in the order in which the tree first refers to
/// them, depth first and a key before its value, which is the order in
/// which ``Argdata/serialize()`` numbers descriptors: the program's
/// descriptor `i` is `sources[i]`. The same `!fd N` and every
/// `!executable` are one source each however often they appear; each
/// `!file` and `!socket` is a file of its own (an alias of one refers to
/// the same file).
package struct Plan: Sendable {
    /// The program's argdata, with source indices as descriptors.
    package var argdata: Argdata
    /// Where each of the program's descriptors comes from.
    package var sources: [DescriptorSource]
    /// Where the root value starts (line 1, column 1 for an empty
    /// document).
    package var rootLocation: SourceLocation
    /// Where each key and value of a root map starts, in order: key `i`
    /// at `2 i`, its value at `2 i + 1`.
    package var rootItemLocations: [SourceLocation]

    /// Reads a configuration.
    ///
    /// - Parameters:
    ///   - bytes: The YAML text (UTF-8, or UTF-16 with a byte order mark).
    ///   - file: The name used in error messages (`<stdin>` for standard
    ///     input).
    ///   - limits: Bounds on hostile input.
    /// - Throws: ``ConfigurationError`` naming the line and column of the
    ///   first problem: YAML syntax, an unknown tag, a malformed `!fd`,
    ///   `!file` or `!socket`, a scalar that the core schema cannot
    ///   represent, or input past one of the `limits`.
    package init(parsing bytes: [UInt8], file: String,
                limits: Limits = Limits()) throws(ConfigurationError) {
        guard bytes.count <= limits.maximumInputBytes else {
            throw ConfigurationError(
                SourceLocation(file: file, line: 1, column: 1),
                "the configuration is \(bytes.count) bytes, more than the \(limits.maximumInputBytes) fdrun reads")
        }
        var composer = Composer(file: file, limits: limits)
        argdata = try composer.compose(bytes)
        sources = composer.sources
        rootLocation = composer.rootLocation ?? SourceLocation(file: file, line: 1, column: 1)
        rootItemLocations = composer.rootItemLocations
    }

    /// The argdata with each placeholder `i` replaced by `descriptors[i]`.
    package func argdata(with descriptors: [FileDescriptor]) -> Argdata {
        precondition(descriptors.count == sources.count)
        return Self.replacing(argdata, descriptors)
    }

    /// Recursion is bounded: plans nest at most ``Limits/maximumDepth``.
    private static func replacing(_ v: Argdata, _ fds: [FileDescriptor]) -> Argdata {
        switch v {
        case .fd(let i):
            return .fd(fds[Int(i.rawValue)])
        case .seq(let elements):
            return .seq(elements.map { replacing($0, fds) })
        case .map(let pairs):
            return .map(pairs.map { (replacing($0.key, fds), replacing($0.value, fds)) })
        default:
            return v
        }
    }
}

/// Bounds on what a configuration may ask for, so that hostile input costs
/// bounded time and memory and fails with a clear error.
package struct Limits: Sendable {
    /// The largest configuration read, in bytes (8 MiB). Linux passes at
    /// most 6 MiB of arguments, so no larger tree could travel anyway.
    package var maximumInputBytes = 8 << 20
    /// The most values (scalars, maps and sequences) in the tree, counting
    /// an alias as everything it stands for at each use: an "alias bomb"
    /// fails when the count passes this, in time linear in the input.
    package var maximumNodes = 1_000_000
    /// The deepest nesting of maps and sequences, aliases expanded: the
    /// depth that ``Argdata`` decodes (``Argdata/maximumDepth``).
    package var maximumDepth = Argdata.maximumDepth
    /// The longest scalar in bytes: one program argument (a run of bytes
    /// without NUL) holds at most 131,071 bytes on Linux.
    package var maximumScalarBytes = 131_071

    /// The default limits.
    package init() {}
}

/// A place in a configuration file, for error messages (1-based).
package struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    /// The file's name as given (`<stdin>` for standard input).
    package var file: String
    /// The line, from 1.
    package var line: Int
    /// The column in characters, from 1.
    package var column: Int

    /// A location.
    package init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`.
    /// The file name escaped: it is the user's, and goes to a terminal.
    package var description: String { "\(escaped(file)):\(line):\(column)" }
}

/// A problem with a configuration, at a place in it.
package struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where the problem is.
    package var location: SourceLocation
    /// What is wrong, with the offending value.
    package var message: String

    /// An error at `location`.
    package init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line:column: message`, as compilers print errors.
    package var description: String { "\(location): \(message)" }
}

/// Where one of the program's descriptors comes from.
package struct DescriptorSource: Hashable, Sendable {
    /// The kinds of source, one per tag.
    package enum Kind: Hashable, Sendable {
        /// `!fd N`: descriptor `N`, which `fdrun` must have inherited.
        case inherited(CInt)
        /// `!file {path: P, mode: M}`: `P` opened in mode `M`.
        case file(path: String, mode: FileMode)
        /// `!socket {bind: A}` or `!socket {connect: A}`.
        case socket(SocketSpec)
        /// `!executable`: the program's own file.
        case executable
    }

    /// What the descriptor is.
    package var kind: Kind
    /// The tag's place in the configuration.
    package var location: SourceLocation

    /// A source.
    package init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind
        self.location = location
    }
}

/// How `!file` opens its path (its `mode` key; `read` by default).
package enum FileMode: String, Hashable, Sendable, CaseIterable {
    /// Read-only; directories too (`O_RDONLY`).
    case read
    /// Write-only, created if missing (mode 0666 less the umask),
    /// truncated (`O_WRONLY | O_CREAT | O_TRUNC`).
    case write
    /// Write-only at the end, created if missing
    /// (`O_WRONLY | O_CREAT | O_APPEND`).
    case append
    /// Read and write, created if missing, not truncated
    /// (`O_RDWR | O_CREAT`).
    case readwrite
}

/// A `!socket`: its role, address and type.
package struct SocketSpec: Hashable, Sendable {
    /// Whether the socket is bound (and, for stream and seqpacket
    /// sockets, listening) or connected.
    package enum Role: String, Hashable, Sendable {
        /// `bind: A`.
        case bind
        /// `connect: A`.
        case connect
    }

    /// The socket type (`type:`; `stream` by default).
    package enum Kind: String, Hashable, Sendable, CaseIterable {
        /// `SOCK_STREAM` (TCP for IP addresses).
        case stream
        /// `SOCK_DGRAM` (UDP for IP addresses).
        case dgram
        /// `SOCK_SEQPACKET` (Unix sockets only on Linux).
        case seqpacket
    }

    /// Bound or connected.
    package var role: Role
    /// The address.
    package var address: SocketAddress
    /// The socket type.
    package var kind: Kind
    /// For a ``SocketAddress/name(host:service:)``, the family its
    /// resolution is limited to (old configurations' `domain: inet` or
    /// `inet6`); `nil`: either.
    package var family: Family?

    /// An address family that a name may be resolved in.
    package enum Family: String, Hashable, Sendable {
        /// IPv4 (`AF_INET`).
        case inet
        /// IPv6 (`AF_INET6`).
        case inet6
    }

    /// A socket.
    package init(_ role: Role, _ address: SocketAddress, kind: Kind = .stream,
                 family: Family? = nil) {
        self.role = role
        self.address = address
        self.kind = kind
        self.family = family
    }
}

/// A socket address as a configuration writes it.
package enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// A Unix socket at a path (which starts with `/`).
    case unix(String)
    /// An IPv4 address (4 bytes, network order) and port.
    case inet([UInt8], port: UInt16)
    /// An IPv6 address (16 bytes, network order) and port.
    case inet6([UInt8], port: UInt16)
    /// A host and a service, either of them a name (`localhost:0`,
    /// `127.0.0.1:http-alt`): resolved with getaddrinfo(3) only when the
    /// socket is opened (or shown by a dry run), never while parsing.
    case name(host: String, service: String)

    /// `/path`, `a.b.c.d:port`, `[v6]:port`, or `host:service`.
    package var description: String {
        switch self {
        case .name(let host, let service):
            let h = host.contains(":") ? "[\(escaped(host))]" : escaped(host)
            return "\(h):\(escaped(service))"
        case .unix(let path):
            return escaped(path)
        case .inet(let a, let port):
            return a.map(String.init).joined(separator: ".") + ":\(port)"
        case .inet6(let a, let port):
            return "[\(Self.ipv6Text(a))]:\(port)"
        }
    }

    /// RFC 5952 text: lower-case hex, the longest run of two or more zero
    /// groups (the first of equal runs) written `::`.
    static func ipv6Text(_ a: [UInt8]) -> String {
        let groups = (0..<8).map { Int(a[2 * $0]) << 8 | Int(a[2 * $0 + 1]) }
        var best = (start: -1, count: 0)
        var i = 0
        while i < 8 {
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.count && j - i >= 2 { best = (i, j - i) }
            i = j + 1
        }
        func hex(_ r: Range<Int>) -> String {
            r.map { String(groups[$0], radix: 16) }.joined(separator: ":")
        }
        guard best.start >= 0 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.count)..<8)
    }
}
