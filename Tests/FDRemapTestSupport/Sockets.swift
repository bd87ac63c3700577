// TCP on 127.0.0.1 for the socket-activation tests of both test
// targets: a listening socket, a port that was free, and a client that
// asks a server for one line.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// 127.0.0.1 at `port` as a `sockaddr_in`, for `body`.
private func withLoopback<R>(port: UInt16,
                             _ body: (UnsafeMutablePointer<sockaddr>, socklen_t) -> R) -> R {
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_addr.s_addr = inet_addr("127.0.0.1")
    sin.sin_port = port.bigEndian
    return withUnsafeMutablePointer(to: &sin) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
}

/// A TCP socket on 127.0.0.1 at a port the kernel picks, close-on-exec,
/// listening when `listening`: its descriptor (-1 on failure, errno set)
/// and port. The caller closes it.
public func loopbackSocket(listening: Bool = true) -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return (-1, 0) }
    var port: UInt16 = 0
    let ok = withLoopback(port: 0) { sa, len in
        var n = len
        guard bind(fd, sa, len) == 0, !listening || listen(fd, 16) == 0,
              getsockname(fd, sa, &n) == 0 else { return false }
        port = UInt16(bigEndian: UnsafeRawPointer(sa).load(as: sockaddr_in.self).sin_port)
        return true
    }
    guard ok else {
        close(fd)
        return (-1, 0)
    }
    return (fd, port)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for programs that
/// bind it themselves; another may take it meanwhile).
public func freeLoopbackPort() -> UInt16 {
    let (fd, port) = loopbackSocket(listening: false)
    if fd >= 0 { close(fd) }
    return port
}

/// Connects to 127.0.0.1:`port`, retrying for up to `seconds` while
/// nothing listens yet, and reads one line, waiting at most `seconds`
/// for it; nil when there is none.
public func askLoopback(port: UInt16, seconds: Int = 10) -> String? {
    let deadline = Date().addingTimeInterval(Double(seconds))
    while Date() < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard withLoopback(port: port, { connect(fd, $0, $1) == 0 }) else {
            usleep(50_000)
            continue
        }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while !bytes.contains(0x0a) {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        return bytes.contains(0x0a) ? String(decoding: bytes, as: UTF8.self) : nil
    }
    return nil
}

/// A line of JSON as an object; empty when it is none.
public func jsonObject(_ line: String?) -> [String: Any] {
    guard let data = line?.data(using: .utf8),
          let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
    return o
}
