// The decoder that Swift's Argdata used before it read bytes itself: C's
// iterators and getters, one call per value.  Kept as an oracle, so that
// the Swift decoder is checked against the C library's reading of the
// same bytes (by the argdata tests and by fuzz-argdata-swift).
import CArgdata
import FDRemap
import Glibc
import SystemPackage

/// What the C library makes of bytes whose descriptor `i` is `fds[i]`:
/// the tree, or the first error in depth-first order.
public func decodeThroughC(_ bytes: [UInt8], fds: [FileDescriptor] = []) -> Result<Argdata, Errno> {
    let table = fds.map(\.rawValue)
    return bytes.withUnsafeBufferPointer { buf in
        table.withUnsafeBufferPointer { fdbuf in
            var lookup = fdbuf
            return withUnsafeMutablePointer(to: &lookup) { arg in
                guard let root = argdata_from_buffer(
                    buf.baseAddress, buf.count, convertDescriptor, arg)
                else {
                    return .failure(.noMemory)
                }
                defer { argdata_free(root) }
                return Result { () throws(Errno) in try TreeReader.decode(root) }
            }
        }
    }
}

/// `convert_fd`: index i is the i-th entry of the buffer that arg points
/// at, -1 beyond.
private let convertDescriptor: @convention(c) (UnsafeMutableRawPointer?, Int) -> CInt = {
    arg, index in
    let fds = arg!.assumingMemoryBound(to: UnsafeBufferPointer<CInt>.self).pointee
    return index < fds.count ? fds[index] : -1
}

/// Turns a C value into an ``Argdata`` without recursion: a stack of the
/// open containers, each with its C iterator.
private enum TreeReader {
    /// An open container and what it has so far.
    struct Frame {
        var seq: UnsafeMutablePointer<argdata_seq_iterator_t>?
        var map: UnsafeMutablePointer<argdata_map_iterator_t>?
        var elements: [Argdata] = []
        var pairs: [(key: Argdata, value: Argdata)] = []
        var key: Argdata? = nil   // a map's key, while its value is read

        func release() {
            seq?.deallocate()
            map?.deallocate()
        }
    }

    static func decode(_ root: OpaquePointer) throws(Errno) -> Argdata {
        var stack: [Frame] = []
        defer { for f in stack { f.release() } }
        var next: OpaquePointer? = root
        while true {
            var done: Argdata? = nil
            if let node = next {
                next = nil
                if let frame = open(node) {
                    guard stack.count < Argdata.maximumDepth else {
                        frame.release()
                        throw .argListTooLong
                    }
                    stack.append(frame)
                } else {
                    done = try scalar(node)
                }
            }
            // Hand the finished value up; close containers that end.
            while true {
                guard !stack.isEmpty else { return done! }
                let top = stack.count - 1
                if let value = done {
                    done = nil
                    if stack[top].map != nil {
                        if let key = stack[top].key {
                            stack[top].pairs.append((key, value))
                            stack[top].key = nil
                            argdata_map_next(stack[top].map)
                        } else {
                            stack[top].key = value
                        }
                    } else {
                        stack[top].elements.append(value)
                        argdata_seq_next(stack[top].seq)
                    }
                }
                if let element = nextElement(of: stack[top]) {
                    next = element
                    break
                }
                // The container is over: finished, or malformed.
                let frame = stack.removeLast()
                let index = frame.map?.pointee.index ?? frame.seq!.pointee.index
                frame.release()
                if index == Int(bitPattern: ARGDATA_ITERATOR_INVALID) {
                    throw Errno.invalidArgument
                }
                done = frame.map != nil ? .map(frame.pairs) : .seq(frame.elements)
            }
        }
    }

    /// The next node to read in frame: a map's current key or value, a
    /// sequence's current entry; nil when there is none.
    static func nextElement(of frame: Frame) -> OpaquePointer? {
        var a: OpaquePointer? = nil
        var b: OpaquePointer? = nil
        if let it = frame.map {
            guard argdata_map_get(it, &a, &b) else { return nil }
            if case .none = frame.key { return a }
            return b
        }
        guard argdata_seq_get(frame.seq, &a) else { return nil }
        return a
    }

    /// A frame for node when it is a sequence or a map. The iterators
    /// hold no pointers into themselves, so one tried on the stack can be
    /// moved to the heap: scalars cost no allocation.
    static func open(_ node: OpaquePointer) -> Frame? {
        var seq = argdata_seq_iterator_t()
        argdata_seq_iterate(node, &seq)
        if seq.index != Int(bitPattern: ARGDATA_ITERATOR_INVALID) { return Frame(seq: onHeap(seq)) }
        var map = argdata_map_iterator_t()
        argdata_map_iterate(node, &map)
        if map.index != Int(bitPattern: ARGDATA_ITERATOR_INVALID) { return Frame(map: onHeap(map)) }
        return nil
    }

    /// A heap copy of an iterator (the frame releases it).
    static func onHeap<T>(_ iterator: T) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: 1)
        p.initialize(to: iterator)
        return p
    }

    /// Throws for a C error other than "another type".
    static func check(_ error: CInt) throws(Errno) -> Bool {
        if error == 0 { return true }
        if error == EINVAL { return false }
        throw Errno(rawValue: error)
    }

    /// A scalar or null; EINVAL for anything else.
    static func scalar(_ node: OpaquePointer) throws(Errno) -> Argdata {
        var len = 0
        argdata_serialized_length(node, &len, nil)
        if len == 0 {
            return .null
        }
        var p: UnsafeRawPointer? = nil
        var n = 0
        if argdata_get_binary(node, &p, &n) == 0 {
            return .binary(Array(UnsafeRawBufferPointer(start: p, count: n)))
        }
        var s: UnsafePointer<CChar>? = nil
        if try check(argdata_get_str(node, &s, &n)) {
            return .str(String(decoding: UnsafeRawBufferPointer(start: s, count: n),
                               as: UTF8.self))
        }
        var fd: CInt = -1
        switch argdata_get_fd(node, &fd) {
        case 0: return .fd(FileDescriptor(rawValue: fd))
        case EBADF: return .fd(Argdata.invalidDescriptor)
        default: break
        }
        var b = false
        if argdata_get_bool(node, &b) == 0 {
            return .bool(b)
        }
        var d = 0.0
        if argdata_get_float(node, &d) == 0 {
            return .float(d)
        }
        return try number(node, length: len)
    }

    /// An integer or a timestamp (beyond 64 bits read from the raw
    /// bytes); EINVAL for anything else.
    static func number(_ node: OpaquePointer, length: Int) throws(Errno) -> Argdata {
        var i = 0
        var e = argdata_get_int_s(node, &i, Int.min, Int.max)
        if e == 0 {
            return .int(Int128(i))
        }
        if e == ERANGE {
            var u: UInt = 0
            e = argdata_get_int_u(node, &u, UInt.max)
            if e == 0 {
                return .int(Int128(u))
            }
            guard let v = raw(node, length: length) else { throw .outOfRange }
            return .int(v)
        }
        var ts = timespec()
        e = argdata_get_timestamp(node, &ts)
        if e == 0 {
            return .timestamp(.init(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec)))
        }
        if e == ERANGE {
            guard let v = raw(node, length: length) else { throw .outOfRange }
            return .timestamp(.init(nanosecondsSince1970: v))
        }
        throw .invalidArgument
    }

    /// The payload of an integer or timestamp node read as two's
    /// complement, nil beyond 128 bits. Serialising a decoded node without
    /// a descriptor list copies its bytes as they are.
    static func raw(_ node: OpaquePointer, length: Int) -> Int128? {
        let bytes = [UInt8](unsafeUninitializedCapacity: length) { buf, count in
            _ = argdata_serialize(node, buf.baseAddress, nil)
            count = length
        }
        // Beyond 64 bits the getters say ERANGE: the payload, read here.
        var payload = bytes.dropFirst()
        while payload.count >= 2, let a = payload.first,
              let b = payload.dropFirst().first, (a == 0 && b < 0x80) || (a == 0xff && b >= 0x80) {
            payload = payload.dropFirst()
        }
        guard payload.count <= 16 else { return nil }
        return payload.reduce(Int128((payload.first ?? 0) >= 0x80 ? -1 : 0)) { $0 << 8 | Int128($1) }
    }
}
