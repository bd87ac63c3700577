import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A configuration that could not be read; the message names it and the
/// system's reason.
package struct ReadError: Error, Hashable, Sendable {
    /// `cannot open the configuration "P": ...` or `cannot read ...`.
    package var message: String
}

extension Plan {
    /// The bytes of the configuration at `path` (standard input when
    /// `nil`), at most one more than `limits`' ``Limits/maximumInputBytes``,
    /// so that ``init(parsing:file:limits:)`` reports a larger one as such
    /// without reading it all.
    ///
    /// - Throws: ``ReadError`` when it cannot be opened or read.
    package static func read(_ path: String?, limits: Limits = Limits()) throws(ReadError) -> [UInt8] {
        var fd: CInt = 0
        if let path {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ReadError(message: "cannot open the configuration \(quoted(path)): \(Errno(rawValue: errno))")
            }
        }
        defer { if path != nil { close(fd) } }
        let limit = limits.maximumInputBytes + 1
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes {
                Glibc.read(fd, $0.baseAddress, min($0.count, limit - bytes.count))
            }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(message: "cannot read the configuration \(path.map(quoted) ?? "from standard input"): \(Errno(rawValue: errno))")
            }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
