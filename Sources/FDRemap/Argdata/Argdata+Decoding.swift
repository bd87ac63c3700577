import SystemPackage

extension Argdata {
    /// Decodes serialised argdata whose descriptor `i` is `fds[i]`.
    ///
    /// The bytes are read in Swift, without recursion and without a call
    /// into C, by the rules the C library's getters and iterators
    /// (`argdata_get_*`, `argdata_map_iterate`, `argdata_seq_iterate`)
    /// check; the tests hold the two to the same answers. Throws `EINVAL` for malformed input (a bad
    /// tag, length or sub-field, a malformed map or sequence anywhere in
    /// the tree), `EILSEQ` for a string that is not UTF-8, `ERANGE` for
    /// an integer or timestamp beyond 128 bits, `E2BIG` for nesting
    /// deeper than ``maximumDepth``: the first of them depth first. A
    /// descriptor index that is `FFFFFFFF` or beyond `fds` decodes as
    /// ``invalidDescriptor``.
    public init(decoding bytes: [UInt8], fds: [FileDescriptor] = []) throws(Errno) {
        let result = bytes.withUnsafeBytes { buf in
            Result { () throws(Errno) in try ArgdataReader(fds: fds).decode(buf) }
        }
        self = try result.get()
    }
}

/// Reads serialised argdata with a stack of the open containers.
private struct ArgdataReader {
    let fds: [FileDescriptor]

    /// An open container: its bytes not read yet, and what it has so far.
    struct Frame {
        var rest: UnsafeRawBufferPointer
        let isMap: Bool
        var elements: [Argdata] = []
        var pairs: [(key: Argdata, value: Argdata)] = []
        var key: Argdata? = nil   // a map's key, while its value is read
        var value: UnsafeRawBufferPointer? = nil   // and that value's bytes
    }

    func decode(_ root: UnsafeRawBufferPointer) throws(Errno) -> Argdata {
        var stack: [Frame] = []
        var next: UnsafeRawBufferPointer? = root
        while true {
            var done: Argdata? = nil
            if let value = next {
                next = nil
                if let tag = value.first, tag == ArgdataTag.map || tag == ArgdataTag.seq {
                    var frame = Frame(rest: UnsafeRawBufferPointer(rebasing: value.dropFirst()),
                                      isMap: tag == ArgdataTag.map)
                    guard stack.count < Argdata.maximumDepth else {
                        // C's iterators read the first element (a map's
                        // first pair) as they start: EINVAL comes first.
                        _ = try Self.take(&frame)
                        throw .argListTooLong
                    }
                    stack.append(frame)
                } else {
                    done = try scalar(value)
                }
            }
            // Hand the finished value up; close containers that end.
            while true {
                guard !stack.isEmpty else { return done! }
                let top = stack.count - 1
                if let value = done {
                    done = nil
                    if !stack[top].isMap {
                        stack[top].elements.append(value)
                    } else if let key = stack[top].key {
                        stack[top].pairs.append((key, value))
                        stack[top].key = nil
                    } else {
                        stack[top].key = value
                    }
                }
                if let value = stack[top].value, stack[top].key != nil {
                    stack[top].value = nil
                    next = value
                    break
                }
                if let element = try Self.take(&stack[top]) {
                    next = element
                    break
                }
                let frame = stack.removeLast()
                done = frame.isMap ? .map(frame.pairs) : .seq(frame.elements)
            }
        }
    }

    /// The next element of frame, nil when there are none. As C's map
    /// iterator, a map's pair is read whole before its key is looked at
    /// (the value's bytes wait in the frame), and a key alone is EINVAL.
    static func take(_ frame: inout Frame) throws(Errno) -> UnsafeRawBufferPointer? {
        guard !frame.rest.isEmpty else { return nil }
        let element = try subfield(&frame.rest)
        if frame.isMap {
            guard !frame.rest.isEmpty else { throw .invalidArgument }
            frame.value = try subfield(&frame.rest)
        }
        return element
    }

    /// Takes one sub-field (its length, 7 bits a byte, the last marked
    /// with 80; then that many bytes) off rest. EINVAL when the length is
    /// not in its shortest form (starts with 00), cut short, or runs past
    /// the end.
    static func subfield(_ rest: inout UnsafeRawBufferPointer) throws(Errno) -> UnsafeRawBufferPointer {
        guard let first = rest.first, first != 0 else { throw .invalidArgument }
        var length = 0
        var i = 0
        while true {
            guard i < rest.count, length <= Int.max >> 7 else { throw .invalidArgument }
            let c = rest[i]
            i += 1
            length = length << 7 | Int(c & 0x7f)
            if c & 0x80 != 0 { break }
        }
        guard length <= rest.count - i else { throw .invalidArgument }
        let field = UnsafeRawBufferPointer(rebasing: rest[i..<(i + length)])
        rest = UnsafeRawBufferPointer(rebasing: rest[(i + length)...])
        return field
    }

    /// A value that is not a container: null when empty.
    func scalar(_ value: UnsafeRawBufferPointer) throws(Errno) -> Argdata {
        guard let tag = value.first else { return .null }
        let payload = UnsafeRawBufferPointer(rebasing: value.dropFirst())
        switch tag {
        case ArgdataTag.binary:
            return .binary(Array(payload))
        case ArgdataTag.bool where payload.isEmpty:
            return .bool(false)
        case ArgdataTag.bool where payload.count == 1 && payload[0] == 1:
            return .bool(true)
        case ArgdataTag.fd where payload.count == 4:
            let index = payload.reduce(0) { $0 << 8 | Int($1) }
            guard index < fds.count, fds[index].rawValue >= 0 else {
                return .fd(Argdata.invalidDescriptor)   // FFFFFFFF too
            }
            return .fd(fds[index])
        case ArgdataTag.float where payload.count == 8:
            return .float(Double(bitPattern: payload.reduce(0) { $0 << 8 | UInt64($1) }))
        case ArgdataTag.int:
            guard let v = Argdata.integer(twosComplement: payload) else { throw .outOfRange }
            return .int(v)
        case ArgdataTag.str where payload.last == 0:
            guard let s = String(validating: payload.dropLast(), as: UTF8.self) else {
                throw .illegalByteSequence
            }
            return .str(s)
        case ArgdataTag.timestamp:
            guard let v = Argdata.integer(twosComplement: payload) else { throw .outOfRange }
            return .timestamp(.init(nanosecondsSince1970: v))
        default:
            throw .invalidArgument
        }
    }
}
