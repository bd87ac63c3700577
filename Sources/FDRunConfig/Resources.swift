import FDRemap

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The values of `!fd`, `!file` and `!socket`, checked without touching
/// the system.
enum Resources {
    typealias Fields = [String: (value: Argdata, at: SourceLocation)]

    /// `stdin`, `stdout`, `stderr` or a decimal descriptor number.
    static func descriptorNumber(_ text: String,
                                 _ at: SourceLocation) throws(ConfigurationError) -> CInt {
        switch text {
        case "stdin": return 0
        case "stdout": return 1
        case "stderr": return 2
        default: break
        }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = CInt(text) else {
            throw ConfigurationError(at, "!fd takes stdin, stdout, stderr or a descriptor number (0 to \(CInt.max)), not \(quoted(text))")
        }
        return n
    }

    /// `!file {path: P, mode: read|write|append|readwrite}`.
    static func file(_ fields: Fields,
                     _ at: SourceLocation) throws(ConfigurationError) -> DescriptorSource.Kind {
        try onlyKeys(fields, ["path", "mode"], tag: "!file")
        guard let path = try string(fields, "path", tag: "!file", at) else {
            throw ConfigurationError(at, "!file needs a path (!file {path: P})")
        }
        guard !path.isEmpty, !path.utf8.contains(0) else {
            throw ConfigurationError(fields["path"]!.at, "!file path \(quoted(path)) is not a path")
        }
        var mode = FileMode.read
        if let m = try string(fields, "mode", tag: "!file", at) {
            guard let parsed = FileMode(rawValue: m) else {
                throw ConfigurationError(fields["mode"]!.at, "!file mode is read, write, append or readwrite, not \(quoted(m))")
            }
            mode = parsed
        }
        return .file(path: path, mode: mode)
    }

    /// `!socket {bind: A}` or `!socket {connect: A}`, with `type:` and,
    /// as old `cloudabi-run` configurations write it, `domain:`.
    static func socket(_ fields: Fields,
                       _ at: SourceLocation) throws(ConfigurationError) -> DescriptorSource.Kind {
        try onlyKeys(fields, ["bind", "connect", "type", "domain"], tag: "!socket")
        let bind = try string(fields, "bind", tag: "!socket", at)
        let connect = try string(fields, "connect", tag: "!socket", at)
        guard (bind == nil) != (connect == nil) else {
            throw ConfigurationError(at, "!socket needs one of bind and connect (!socket {bind: A} or {connect: A})")
        }
        let role: SocketSpec.Role = bind != nil ? .bind : .connect
        let field = fields[role.rawValue]!
        var kind = SocketSpec.Kind.stream
        if let t = try string(fields, "type", tag: "!socket", at) {
            guard let parsed = SocketSpec.Kind(rawValue: t) else {
                throw ConfigurationError(fields["type"]!.at, "!socket type is stream, dgram or seqpacket, not \(quoted(t))")
            }
            kind = parsed
        }
        let domain = try string(fields, "domain", tag: "!socket", at)
        let family: CInt = switch domain {
        case "inet": AF_INET
        case "inet6": AF_INET6
        default: AF_UNSPEC
        }
        let address = try self.address(bind ?? connect!, kind: kind, family: family, field.at)
        if let d = domain {
            let family: String
            switch address {
            case .unix: family = "unix"
            case .inet: family = "inet"
            case .inet6: family = "inet6"
            }
            guard d == family else {
                throw ConfigurationError(fields["domain"]!.at, "!socket domain \(quoted(d)) does not match the address \(address) (\(family))")
            }
        }
        return .socket(SocketSpec(role, address, kind: kind))
    }

    /// `/path`, `a.b.c.d:port`, `[v6]:port`, or `host:service` with
    /// names, resolved as `cloudabi-run` resolved them: getaddrinfo(3)
    /// for the socket's type (and `domain:`'s family, when given), its
    /// first IPv4 or IPv6 address.
    static func address(_ text: String, kind: SocketSpec.Kind = .stream, family: CInt = AF_UNSPEC,
                        _ at: SourceLocation) throws(ConfigurationError) -> SocketAddress {
        let bad = ConfigurationError(at, "\(quoted(text)) is not a socket address: /path, HOST:PORT or [IPV6]:PORT")
        if text.hasPrefix("/") {
            guard !text.utf8.contains(0) else { throw bad }
            guard text.utf8.count <= 107 else {
                throw ConfigurationError(at, "the Unix socket path \(quoted(text)) is longer than 107 bytes")
            }
            return .unix(text)
        }
        guard let colon = text.lastIndex(of: ":"), !text.utf8.contains(0) else { throw bad }
        var host = text[..<colon]
        let service = text[text.index(after: colon)...]
        guard !host.isEmpty, !service.isEmpty else { throw bad }
        let numericPort = service.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        if numericPort && UInt16(service) == nil { throw bad }
        // A service name starts with a letter (services(5)): "-1" is
        // neither a port nor a name.
        if !numericPort, let c = service.utf8.first,
           !((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) { throw bad }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
            var a = in6_addr()
            guard inet_pton(AF_INET6, String(host), &a) == 1 else { throw bad }
            guard let port = numericPort ? UInt16(service) : try resolvePort(text, service, kind, at)
            else { throw bad }
            return .inet6(withUnsafeBytes(of: a) { Array($0) }, port: port)
        }
        // A colon left in the host is an IPv6 address without brackets.
        guard !host.contains(":") else { throw bad }
        var a = in_addr()
        if numericPort, inet_pton(AF_INET, String(host), &a) == 1 {
            return .inet(withUnsafeBytes(of: a) { Array($0) }, port: UInt16(service)!)
        }
        return try resolve(text, String(host), String(service), kind, family, at)
    }

    /// getaddrinfo(3)'s hints for a socket of this type and family.
    private static func hints(_ kind: SocketSpec.Kind, _ family: CInt) -> addrinfo {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(kind == .dgram ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        return hints
    }

    /// The first IPv4 or IPv6 address of `host` and `service`.
    private static func resolve(_ text: String, _ host: String, _ service: String,
                                _ kind: SocketSpec.Kind, _ family: CInt,
                                _ at: SourceLocation) throws(ConfigurationError) -> SocketAddress {
        var hints = hints(kind, family)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, service, &hints, &list)
        guard rc == 0, let list else {
            throw ConfigurationError(at, "cannot resolve \(quoted(text)): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let ai = next {
            next = ai.pointee.ai_next
            guard let sa = ai.pointee.ai_addr else { continue }
            if ai.pointee.ai_family == AF_INET {
                let sin = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
                return .inet(withUnsafeBytes(of: sin.sin_addr) { Array($0) },
                             port: UInt16(bigEndian: sin.sin_port))
            }
            if ai.pointee.ai_family == AF_INET6 {
                let sin6 = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
                return .inet6(withUnsafeBytes(of: sin6.sin6_addr) { Array($0) },
                              port: UInt16(bigEndian: sin6.sin6_port))
            }
        }
        throw ConfigurationError(at, "cannot resolve \(quoted(text)): no IPv4 or IPv6 address")
    }

    /// A service name's port (for a numeric IPv6 host).
    private static func resolvePort(_ text: String, _ service: Substring, _ kind: SocketSpec.Kind,
                                    _ at: SourceLocation) throws(ConfigurationError) -> UInt16? {
        guard case .inet6(_, let port) = try resolve(text, "::1", String(service), kind, AF_INET6, at)
        else { return nil }
        return port
    }

    private static func onlyKeys(_ fields: Fields, _ known: [String],
                                 tag: String) throws(ConfigurationError) {
        // Report the first unknown key in the file.
        let unknown = fields.filter { !known.contains($0.key) }
            .min { ($0.value.at.line, $0.value.at.column) < ($1.value.at.line, $1.value.at.column) }
        if let (key, field) = unknown {
            throw ConfigurationError(field.at, "\(tag) has no key \(quoted(key)) (it takes \(known.joined(separator: ", ")))")
        }
    }

    /// The string value of key, nil when absent.
    private static func string(_ fields: Fields, _ key: String, tag: String,
                               _ at: SourceLocation) throws(ConfigurationError) -> String? {
        guard let field = fields[key] else { return nil }
        guard case .str(let s) = field.value else {
            throw ConfigurationError(field.at, "\(tag) \(key) must be a string, not \(show(field.value)) (quote it)")
        }
        return s
    }

    /// A short description of a value for error messages.
    static func show(_ v: Argdata) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return "the bool \(b)"
        case .int(let i): return "the int \(i)"
        case .float(let d): return "the float \(d)"
        case .str(let s): return quoted(s)
        case .binary: return "binary data"
        case .timestamp: return "a timestamp"
        case .fd: return "a descriptor"
        case .seq: return "a sequence"
        case .map: return "a map"
        }
    }
}
