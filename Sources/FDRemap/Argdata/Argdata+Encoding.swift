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
    /// The whole tree crosses into C once: it is built as a C tree,
    /// serialised by `argdata_serialize`, and freed. Runs out of memory
    /// the way Swift allocation does: it traps.
    public func serialize() -> (bytes: [UInt8], fds: [FileDescriptor]) {
        let tree = CTree()
        // The C tree must outlive every use of root.
        return withExtendedLifetime(tree) { serialized(tree.build(self)) }
    }

    /// This tree as a YAML 1.2 document, as `argdata_print_yaml` prints
    /// it: every scalar tagged, strings quoted and escaped, descriptors as
    /// `!fd "N"` (their numbers in this process).
    public func yaml() -> String {
        let tree = CTree()
        return withExtendedLifetime(tree) {
            let root = tree.build(self)
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

/// A C tree built from an ``Argdata`` and everything it points at, freed
/// together when this goes.
final class CTree {
    private var nodes: [OpaquePointer] = []
    private var memory: [UnsafeMutableRawPointer] = []

    deinit {
        for node in nodes { argdata_free(node) }
        for block in memory { block.deallocate() }
    }

    /// Keep a node made by C (nil: out of memory, as Swift traps).
    private func keep(_ node: OpaquePointer?) -> OpaquePointer {
        guard let node else {
            fatalError("argdata: \(Errno(rawValue: errno))")
        }
        nodes.append(node)
        return node
    }

    /// A copy of bytes that lives as long as the tree.
    private func copy(_ bytes: some Collection<UInt8>) -> UnsafeRawPointer {
        let block = UnsafeMutableRawPointer.allocate(
            byteCount: max(bytes.count, 1), alignment: 1)
        memory.append(block)
        _ = UnsafeMutableRawBufferPointer(start: block, count: bytes.count)
            .initializeMemory(as: UInt8.self, from: bytes)
        return UnsafeRawPointer(block)
    }

    /// An array of n node pointers that lives as long as the tree.
    private func pointers(_ n: Int) -> UnsafeMutablePointer<OpaquePointer?> {
        let block = UnsafeMutablePointer<OpaquePointer?>.allocate(
            capacity: max(n, 1))
        memory.append(UnsafeMutableRawPointer(block))
        return block
    }

    /// The serialised true (2, 1), false (2) and invalid descriptor
    /// (3, FF, FF, FF, FF), once a tree: C's argdata_true and
    /// argdata_false, of an incomplete type, cannot be seen from Swift.
    private lazy var constants: UnsafeRawPointer = copy([2, 1, 3, 0xff, 0xff, 0xff, 0xff])

    /// A node over count bytes of the constants from offset.
    private func constant(_ offset: Int, _ count: Int) -> OpaquePointer {
        keep(argdata_from_buffer(constants + offset, count, nil, nil))
    }

    /// A node over serialised bytes (a copy of them).
    private func serialised(_ bytes: [UInt8]) -> OpaquePointer {
        keep(argdata_from_buffer(copy(bytes), bytes.count, nil, nil))
    }

    /// The C tree of value, without recursion: its nodes in pre-order,
    /// then made last to first, so that the nodes of a container's
    /// elements are on the stack, first element on top, when it is made.
    func build(_ value: Argdata) -> OpaquePointer {
        var order: [Argdata] = []
        var pending: [Argdata] = [value]
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
        var made: [OpaquePointer] = []
        for v in order.reversed() {
            made.append(node(v, taking: &made))
        }
        return made[0]
    }

    /// The node of v; a container takes its elements' nodes off made.
    private func node(_ v: Argdata, taking made: inout [OpaquePointer])
        -> OpaquePointer
    {
        switch v {
        case .null:
            return keep(argdata_from_buffer(nil, 0, nil, nil))
        case .binary(let bytes):
            return keep(argdata_create_binary(copy(bytes), bytes.count))
        case .bool(let b):
            return constant(0, b ? 2 : 1)
        case .fd(let fd):
            guard fd.rawValue >= 0 else {
                return constant(2, 5)
            }
            return keep(argdata_create_fd(fd.rawValue))
        case .float(let d):
            return keep(argdata_create_float(d))
        case .int(let i):
            if let s = Int(exactly: i) {
                return keep(argdata_create_int_s(s))
            } else if let u = UInt(exactly: i) {
                return keep(argdata_create_int_u(u))
            }
            return serialised([5] + Argdata.twosComplement(i))
        case .map(let pairs):
            let keys = pointers(pairs.count)
            let values = pointers(pairs.count)
            for i in 0..<pairs.count {
                keys[i] = made.removeLast()
                values[i] = made.removeLast()
            }
            return keep(argdata_create_map(keys, values, pairs.count))
        case .seq(let elements):
            let entries = pointers(elements.count)
            for i in 0..<elements.count {
                entries[i] = made.removeLast()
            }
            return keep(argdata_create_seq(entries, elements.count))
        case .str(let s):
            let utf8 = s.utf8
            let bytes = utf8.withContiguousStorageIfAvailable { copy($0) } ?? copy(utf8)
            return keep(argdata_create_str(
                bytes.assumingMemoryBound(to: CChar.self), utf8.count))
        case .timestamp(let t):
            if let sec = Int(exactly: t.seconds) {
                var ts = timespec(tv_sec: sec, tv_nsec: Int(t.nanoseconds))
                return keep(argdata_create_timestamp(&ts))
            }
            return serialised([9] + Argdata.twosComplement(t.nanosecondsSince1970))
        }
    }
}

extension Argdata {
    /// v in the fewest bytes of big-endian two's complement (none for 0),
    /// as the encoding stores integers and timestamps.
    static func twosComplement(_ v: Int128) -> [UInt8] {
        var bytes = (0..<16).reversed().map {
            UInt8(truncatingIfNeeded: v >> ($0 * 8))
        }[...]
        while bytes.count >= 2,
              let a = bytes.first,
              (a == 0 && bytes[bytes.startIndex + 1] < 0x80)
                || (a == 0xff && bytes[bytes.startIndex + 1] >= 0x80) {
            bytes = bytes.dropFirst()
        }
        return bytes == [0] ? [] : Array(bytes)
    }

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
