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
        let address = try self.address(bind ?? connect!, field.at)
        var kind = SocketSpec.Kind.stream
        if let t = try string(fields, "type", tag: "!socket", at) {
            guard let parsed = SocketSpec.Kind(rawValue: t) else {
                throw ConfigurationError(fields["type"]!.at, "!socket type is stream, dgram or seqpacket, not \(quoted(t))")
            }
            kind = parsed
        }
        var resolveIn: SocketSpec.Family?
        if let d = try string(fields, "domain", tag: "!socket", at) {
            let family: String
            switch address {
            case .unix: family = "unix"
            case .inet: family = "inet"
            case .inet6: family = "inet6"
            case .name:
                // A name is resolved in the domain's family.
                guard let f = SocketSpec.Family(rawValue: d) else {
                    throw ConfigurationError(fields["domain"]!.at, "!socket domain \(quoted(d)) does not match the address \(address) (inet or inet6)")
                }
                resolveIn = f
                family = d
            }
            guard d == family else {
                throw ConfigurationError(fields["domain"]!.at, "!socket domain \(quoted(d)) does not match the address \(address) (\(family))")
            }
        }
        return .socket(SocketSpec(role, address, kind: kind, family: resolveIn))
    }

    /// `/path`, `a.b.c.d:port`, `[v6]:port`, or `host:service` where
    /// either is a name (a ``SocketAddress/name(host:service:)``, left
    /// unresolved: parsing never asks the system). A port is decimal, at
    /// most 65535; a service name starts with a letter and has letters,
    /// digits, `-`, `_`, `.` and `+` (services(5)); a host name letters,
    /// digits, `-`, `_` and `.`, not first a `-` or `.`.
    static func address(_ text: String,
                        _ at: SourceLocation) throws(ConfigurationError) -> SocketAddress {
        let bad = ConfigurationError(at, "\(quoted(text)) is not a socket address: /path, HOST:PORT or [IPV6]:PORT (HOST and PORT may be names)")
        if text.hasPrefix("/") {
            guard !text.utf8.contains(0) else { throw bad }
            guard text.utf8.count <= 107 else {
                throw ConfigurationError(at, "the Unix socket path \(quoted(text)) is longer than 107 bytes")
            }
            return .unix(text)
        }
        guard let colon = text.lastIndex(of: ":") else { throw bad }
        var host = text[..<colon]
        let service = text[text.index(after: colon)...]
        let port = service.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? UInt16(service) : nil
        guard port != nil || isServiceName(service) else { throw bad }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
            var a = in6_addr()
            guard inet_pton(AF_INET6, String(host), &a) == 1 else { throw bad }
            guard let port else { return .name(host: String(host), service: String(service)) }
            return .inet6(withUnsafeBytes(of: a) { Array($0) }, port: port)
        }
        var a = in_addr()
        if let port, inet_pton(AF_INET, String(host), &a) == 1 {
            return .inet(withUnsafeBytes(of: a) { Array($0) }, port: port)
        }
        guard isHostName(host) else { throw bad }
        return .name(host: String(host), service: String(service))
    }

    private static func isLetter(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// A service name as services(5) spells them: `http-alt`, `ntp`.
    private static func isServiceName(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, isLetter(first), s.utf8.count <= 64 else { return false }
        return s.utf8.allSatisfy { isLetter($0) || isDigit($0) || "-_.+".utf8.contains($0) }
    }

    /// A host name (or an IPv4 address, with a service name).
    private static func isHostName(_ s: Substring) -> Bool {
        guard let first = s.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "."),
              s.utf8.count <= 253 else { return false }
        return s.utf8.allSatisfy { isLetter($0) || isDigit($0) || "-_.".utf8.contains($0) }
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
