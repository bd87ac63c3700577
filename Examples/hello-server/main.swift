// hello-server: a web server that can do only what its descriptors allow.
//
// It reads its argdata with `Argdata.current()`: a map with a listening
// `socket`, a `log` descriptor, the `message` to answer with and how many
// `requests` to serve before it exits (0: no limit). It accepts on the
// socket it was handed, answers every request with the message, and logs
// to the descriptor it was handed; it cannot open a file or a socket of
// its own choosing, because it has none to start from.
//
//   fdrun .build/debug/hello-server Examples/hello-server/hello.yaml
//   curl http://127.0.0.1:8080/
import FDRemap
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes a line to the log; a log that fails is not a reason to stop.
func log(_ fd: FileDescriptor, _ line: String) {
    _ = try? fd.writeAll(Array((line + "\n").utf8))
}

/// The local address of a socket, as `host:port` (`[host]:port` for IPv6).
func localAddress(_ fd: FileDescriptor) -> String {
    var ss = sockaddr_storage()
    var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &ss) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getsockname(fd.rawValue, $0, &len) == 0
        }
    }
    guard ok else { return "?" }
    var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    switch CInt(ss.ss_family) {
    case AF_INET:
        var sin = withUnsafeBytes(of: ss) { $0.load(as: sockaddr_in.self) }
        inet_ntop(AF_INET, &sin.sin_addr, &host, socklen_t(host.count))
        return "\(text(host)):\(UInt16(bigEndian: sin.sin_port))"
    case AF_INET6:
        var sin6 = withUnsafeBytes(of: ss) { $0.load(as: sockaddr_in6.self) }
        inet_ntop(AF_INET6, &sin6.sin6_addr, &host, socklen_t(host.count))
        return "[\(text(host))]:\(UInt16(bigEndian: sin6.sin6_port))"
    default:
        return "a Unix socket"
    }
}

/// A NUL-terminated C buffer as a string.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Reads a request's head (up to the blank line, at most 8 KiB) and
/// returns its first line; nil when the client sent nothing usable.
func requestLine(_ client: FileDescriptor) -> String? {
    var head: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1024)
    while head.count < 8192 {
        guard let n = try? buf.withUnsafeMutableBytes({ try client.read(into: $0) }),
              n > 0 else { break }
        let old = head.count
        head += buf[0..<n]
        if hasBlankLine(head, from: old) { break }
    }
    guard let end = head.firstIndex(of: 13) ?? head.firstIndex(of: 10), end > 0 else {
        return nil
    }
    return String(decoding: head[..<end], as: UTF8.self)
}

/// Whether bytes has CR LF CR LF ending at or after index from.
func hasBlankLine(_ bytes: [UInt8], from: Int) -> Bool {
    var i = max(0, from - 3)
    while i + 3 < bytes.count {
        if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return true
        }
        i += 1
    }
    return false
}

let args: Argdata
do {
    args = try Argdata.current()
} catch {
    exit(2)   // not started by fdrun (or a launcher like it)
}
guard let socket = try? args.value(forKey: "socket")?.fileDescriptor(),
      let logfd = try? args.value(forKey: "log")?.fileDescriptor() else {
    exit(3)   // nowhere to listen, or nowhere to say so
}
let message = (try? args.value(forKey: "message")?.string()) ?? "Hello\n"
let limit = (try? args.value(forKey: "requests")?.integer(as: Int.self)) ?? 0

log(logfd, "hello-server: listening on \(localAddress(socket))")
var served = 0
while limit == 0 || served < limit {
    let c = accept(socket.rawValue, nil, nil)
    if c < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        log(logfd, "hello-server: accept: \(Errno(rawValue: errno))")
        exit(1)
    }
    let client = FileDescriptor(rawValue: c)
    // A client that sends nothing does not hold the server forever.
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let line = requestLine(client) ?? "(no request)"
    let body = Array(message.utf8)
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
    _ = try? client.writeAll(Array(head.utf8) + body)
    try? client.close()
    served += 1
    log(logfd, "hello-server: \(line) -> 200 (\(served) served)")
}
exit(0)
