internal import CArgdata
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Argdata {
    /// The serialised bytes of this tree and its descriptor list.
    ///
    /// Descriptors are renumbered `0..<fds.count` in order of first
    /// appearance (depth first, a key before its value), each listed
    /// once: the new program finds descriptor `i` at `fds[i]`. An invalid
    /// (negative) descriptor is written as index `FFFFFFFF` and not
    /// listed.
    ///
    /// The tree is written in Swift, each descriptor as its own number;
    /// when it has any, the C library numbers them in one call
    /// (`argdata_index_fds`, which shares `argdata_serialize`'s
    /// numbering), so that the order of extraction has one
    /// implementation. Runs out of memory the way Swift allocation does:
    /// it traps.
    public func serialize() -> (bytes: [UInt8], fds: [FileDescriptor]) {
        var (bytes, offsets) = encodedWithOwnDescriptors()
        guard !offsets.isEmpty else { return (bytes, []) }
        var fds = [CInt](repeating: -1, count: offsets.count)
        let used = bytes.withUnsafeMutableBufferPointer { b in
            offsets.withUnsafeBufferPointer { o in
                fds.withUnsafeMutableBufferPointer { f in
                    argdata_index_fds(b.baseAddress, o.baseAddress, o.count, f.baseAddress)
                }
            }
        }
        return (bytes, fds[..<used].map { FileDescriptor(rawValue: $0) })
    }

    /// This tree as a YAML document, exactly as `argdata_print_yaml` prints
    /// it: every scalar tagged, strings quoted and escaped, descriptors as
    /// `!fd "N"` (their numbers in this process).
    public func yaml() -> String {
        let (raw, _) = encodedWithOwnDescriptors()
        return raw.withUnsafeBufferPointer { buf in
            withCTree(over: buf) { root in
                var text: UnsafeMutablePointer<CChar>? = nil
                var size = 0
                guard let fp = open_memstream(&text, &size) else {
                    fatalError("argdata: open_memstream: \(Errno(rawValue: errno))")
                }
                argdata_print_yaml(root, fp)
                fclose(fp)
                defer { free(text) }
                return String(decoding: UnsafeRawBufferPointer(start: text, count: size),
                              as: UTF8.self)
            }
        }
    }

    /// The encoding of this tree with each descriptor's index being its
    /// own number (`FFFFFFFF` when negative), and where those indices
    /// are (byte offsets, in order).
    ///
    /// Without recursion, in two passes over the values in pre-order: the
    /// size and node count of every subtree (children before parents,
    /// so last to first), then every value's length prefix (the root has
    /// none) and its bytes, or a container's tag, first to last.
    func encodedWithOwnDescriptors() -> (bytes: [UInt8], fdOffsets: [Int]) {
        var order: [Argdata] = []
        var pending: [Argdata] = [self]
        while let v = pending.popLast() {
            order.append(v)
            switch v {
            case .seq(let elements):
                pending.append(contentsOf: elements.reversed())
            case .map(let pairs):
                for (k, v) in pairs.reversed() {
                    pending.append(v)
                    pending.append(k)
                }
            default:
                break
            }
        }
        var size = [Int](repeating: 0, count: order.count)
        var span = [Int](repeating: 1, count: order.count)
        for i in order.indices.reversed() {
            let children: Int
            switch order[i] {
            case .seq(let elements): children = elements.count
            case .map(let pairs): children = 2 * pairs.count
            default:
                size[i] = order[i].leafSize
                continue
            }
            var j = i + 1
            var total = 1
            for _ in 0..<children {
                total += Argdata.prefixLength(size[j]) + size[j]
                j += span[j]
            }
            size[i] = total
            span[i] = j - i
        }
        var out: [UInt8] = []
        out.reserveCapacity(size[0])
        var fdOffsets: [Int] = []
        for i in order.indices {
            if i > 0 { Argdata.appendPrefix(size[i], to: &out) }
            if case .fd = order[i] { fdOffsets.append(out.count + 1) }
            order[i].appendHead(to: &out)
        }
        return (out, fdOffsets)
    }

    /// The bytes of a value that is not a container.
    private var leafSize: Int {
        switch self {
        case .null: 0
        case .binary(let bytes): 1 + bytes.count
        case .bool(let b): b ? 2 : 1
        case .fd: 5
        case .float: 9
        case .int(let i): 1 + Argdata.twosComplementCount(i)
        case .str(let s): 1 + s.utf8.count + 1
        case .timestamp(let t): 1 + Argdata.twosComplementCount(t.nanosecondsSince1970)
        case .seq, .map: preconditionFailure("a container is not a leaf")
        }
    }

    /// A leaf's bytes, or a container's tag (its elements follow).
    private func appendHead(to out: inout [UInt8]) {
        switch self {
        case .null:
            break
        case .binary(let bytes):
            out.append(ArgdataTag.binary)
            out.append(contentsOf: bytes)
        case .bool(let b):
            out.append(ArgdataTag.bool)
            if b { out.append(1) }
        case .fd(let fd):
            let index = fd.rawValue >= 0 ? UInt32(fd.rawValue) : .max
            out.append(ArgdataTag.fd)
            for shift in stride(from: 24, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: index >> UInt32(shift)))
            }
        case .float(let d):
            out.append(ArgdataTag.float)
            let bits = d.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
            }
        case .int(let i):
            out.append(ArgdataTag.int)
            Argdata.appendTwosComplement(i, to: &out)
        case .map:
            out.append(ArgdataTag.map)
        case .seq:
            out.append(ArgdataTag.seq)
        case .str(let s):
            out.append(ArgdataTag.str)
            out.append(contentsOf: s.utf8)
            out.append(0)
        case .timestamp(let t):
            out.append(ArgdataTag.timestamp)
            Argdata.appendTwosComplement(t.nanosecondsSince1970, to: &out)
        }
    }

    /// The bytes of a sub-field's length: 7 bits each, most significant
    /// first, the last one marked with 80.
    static func prefixLength(_ n: Int) -> Int {
        n < 0x80 ? 1 : (Int.bitWidth - n.leadingZeroBitCount + 6) / 7
    }

    static func appendPrefix(_ n: Int, to out: inout [UInt8]) {
        let count = prefixLength(n)
        for k in (0..<count).reversed() {
            let group = UInt8(truncatingIfNeeded: n >> (7 * k)) & 0x7f
            out.append(k == 0 ? group | 0x80 : group)
        }
    }

    /// The fewest bytes of big-endian two's complement that hold v (none
    /// for 0).
    static func twosComplementCount(_ v: Int128) -> Int {
        if v == 0 { return 0 }
        let magnitude = v < 0 ? ~v : v
        return (Int128.bitWidth - magnitude.leadingZeroBitCount + 1 + 7) / 8
    }

    static func appendTwosComplement(_ v: Int128, to out: inout [UInt8]) {
        for k in (0..<twosComplementCount(v)).reversed() {
            out.append(UInt8(truncatingIfNeeded: v >> (8 * k)))
        }
    }
}

/// The tags of the encoding (argdata.md), the first byte of a value:
/// argdata.h's `ARGDATA_TAG_*`, the one definition.
enum ArgdataTag {
    static let binary = UInt8(ARGDATA_TAG_BINARY), bool = UInt8(ARGDATA_TAG_BOOL)
    static let fd = UInt8(ARGDATA_TAG_FD), float = UInt8(ARGDATA_TAG_FLOAT)
    static let int = UInt8(ARGDATA_TAG_INT), map = UInt8(ARGDATA_TAG_MAP)
    static let seq = UInt8(ARGDATA_TAG_SEQ), str = UInt8(ARGDATA_TAG_STR)
    static let timestamp = UInt8(ARGDATA_TAG_TIMESTAMP)
}

/// `body` with a C tree over `bytes`, whose descriptor indices are
/// descriptor numbers (``Argdata/encodedWithOwnDescriptors()``).
private func withCTree<R>(over bytes: UnsafeBufferPointer<UInt8>,
                          _ body: (OpaquePointer) -> R) -> R {
    guard let root = argdata_from_buffer(bytes.baseAddress, bytes.count, ownNumber, nil)
    else {
        fatalError("argdata: \(Errno(rawValue: errno))")
    }
    defer { argdata_free(root) }
    return body(root)
}

/// `convert_fd` of an encoding by ``Argdata/encodedWithOwnDescriptors()``:
/// the index is the descriptor.
private let ownNumber: @convention(c) (UnsafeMutableRawPointer?, Int) -> CInt = { _, index in
    index <= Int(CInt.max) ? CInt(index) : -1
}

extension Argdata {
    /// The value of a two's complement payload of any length, or nil when
    /// it needs more than 128 bits.
    static func integer(twosComplement payload: UnsafeRawBufferPointer) -> Int128? {
        var bytes = payload[...]
        while bytes.count >= 2,
              let a = bytes.first,
              (a == 0 && bytes[bytes.startIndex + 1] < 0x80)
                || (a == 0xff && bytes[bytes.startIndex + 1] >= 0x80) {
            bytes = bytes.dropFirst()
        }
        guard bytes.count <= 16 else { return nil }
        var v: Int128 = (bytes.first ?? 0) >= 0x80 ? -1 : 0
        for b in bytes {
            v = v << 8 | Int128(b)
        }
        return v
    }
}

/// Serialises a C tree in one `argdata_serialize`: its bytes, and the
/// descriptors it references in order of first appearance.
internal func serialized(_ root: OpaquePointer) -> (bytes: [UInt8], fds: [FileDescriptor]) {
    var len = 0
    var nfds = 0
    argdata_serialized_length(root, &len, &nfds)
    var fds = [CInt](repeating: -1, count: nfds)
    var used = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: len) { buf, count in
        // No descriptor value (nfds == 0) serialises the same without a
        // list, so a nil base address is fine; so is an empty (null) tree.
        used = fds.withUnsafeMutableBufferPointer {
            argdata_serialize(root, buf.baseAddress, $0.baseAddress)
        }
        count = len
    }
    return (bytes, fds[..<used].map { FileDescriptor(rawValue: $0) })
}
