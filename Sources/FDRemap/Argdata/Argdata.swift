import SystemPackage

/// A CloudABI argument tree: scalars, sequences and maps, in which a file
/// descriptor is a value of its own.
///
/// A program started with argdata gets this tree instead of `argv`, and
/// exactly the descriptors that the tree references. ``serialize()`` gives
/// the bytes and the descriptor list for `proc_exec`, with descriptors
/// renumbered in order of first appearance; ``init(decoding:fds:)`` reads
/// them back. Both are written in Swift and held by the tests to the C
/// library `CArgdata`'s bytes and reading (which is byte-compatible with
/// CloudABI's reference library); `serialize()` calls into C once, to
/// renumber the descriptors.
///
/// ```swift
/// let args: Argdata = ["port": 8080, "log": .fd(.standardOutput)]
/// let (bytes, fds) = args.serialize()
/// ```
///
/// Maps are ordered lists of key/value pairs: keys may be any value, are
/// not sorted, and may repeat, as on the wire. Equality is structural and
/// compares floats bit for bit, so `.float(.nan)` equals itself and
/// `.float(-0.0)` differs from `.float(0.0)`.
///
/// Values nest through arrays, and Swift releases nested values
/// recursively: decoding refuses trees deeper than ``maximumDepth``. (The
/// C library walks any depth without recursion.)
///
/// `Argdata` is not `Codable`: a descriptor means something only in this
/// process and in the list that ``serialize()`` returns beside the bytes,
/// so no other format can carry it, and the argdata encoding itself is
/// what ``serialize()`` and ``init(decoding:fds:)`` give.
public enum Argdata: Sendable {
    /// No value (the empty encoding).
    case null
    /// Raw bytes.
    case binary([UInt8])
    /// A boolean.
    case bool(Bool)
    /// A file descriptor of this process. A negative one stands for an
    /// invalid descriptor: it serialises as index `FFFFFFFF` and is not
    /// listed, and decoding gives it for a descriptor that is unavailable.
    case fd(FileDescriptor)
    /// An IEEE-754 double, kept bit for bit (negative zero, NaN payloads).
    case float(Double)
    /// An integer. The encoding has no bound; this type holds 128 bits.
    case int(Int128)
    /// Key/value pairs in order.
    case map([(key: Argdata, value: Argdata)])
    /// A sequence.
    case seq([Argdata])
    /// A Unicode string (which may contain NUL characters).
    case str(String)
    /// A point in time.
    case timestamp(Timestamp)

    /// The deepest nesting of maps and sequences that decoding accepts;
    /// deeper input fails with `E2BIG`.
    public static let maximumDepth = 1000

    /// The descriptor that stands for an invalid one (`-1`).
    public static let invalidDescriptor = FileDescriptor(rawValue: -1)
}

extension Argdata {
    /// A point in time: nanoseconds since 1970-01-01 00:00:00 UTC, as the
    /// encoding stores it. 128 bits cover about 5 * 10^21 years either
    /// way.
    public struct Timestamp: Hashable, Sendable, Comparable {
        /// Nanoseconds since 1970-01-01 00:00:00 UTC (negative: before).
        public var nanosecondsSince1970: Int128

        /// A timestamp `nanosecondsSince1970` nanoseconds after the epoch.
        public init(nanosecondsSince1970: Int128) {
            self.nanosecondsSince1970 = nanosecondsSince1970
        }

        /// A timestamp from whole seconds and nanoseconds, as in a
        /// `timespec`; `nanoseconds` may be any value and is added.
        public init(seconds: Int64, nanoseconds: Int64 = 0) {
            self.nanosecondsSince1970 =
                Int128(seconds) * 1_000_000_000 + Int128(nanoseconds)
        }

        /// Whole seconds since the epoch, rounded down.
        public var seconds: Int128 {
            let (q, r) = nanosecondsSince1970.quotientAndRemainder(
                dividingBy: 1_000_000_000)
            return r < 0 ? q - 1 : q
        }

        /// The nanoseconds past ``seconds``, in 0..<1_000_000_000.
        public var nanoseconds: Int64 {
            let r = nanosecondsSince1970 % 1_000_000_000
            return Int64(r < 0 ? r + 1_000_000_000 : r)
        }

        /// Earlier timestamps order first.
        public static func < (a: Timestamp, b: Timestamp) -> Bool {
            a.nanosecondsSince1970 < b.nanosecondsSince1970
        }
    }
}

// MARK: - Equality

extension Argdata: Hashable {
    /// Structural equality; floats compare bit for bit.
    public static func == (a: Argdata, b: Argdata) -> Bool {
        switch (a, b) {
        case (.null, .null):
            return true
        case let (.binary(x), .binary(y)):
            return x == y
        case let (.bool(x), .bool(y)):
            return x == y
        case let (.fd(x), .fd(y)):
            return x == y
        case let (.float(x), .float(y)):
            return x.bitPattern == y.bitPattern
        case let (.int(x), .int(y)):
            return x == y
        case let (.map(x), .map(y)):
            return x.count == y.count
                && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.seq(x), .seq(y)):
            return x == y
        case let (.str(x), .str(y)):
            // Scalars, not canonical equivalence: the bytes must match.
            return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case let (.timestamp(x), .timestamp(y)):
            return x == y
        default:
            return false
        }
    }

    /// Hashes consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0)
        case .binary(let v):
            hasher.combine(1)
            hasher.combine(v)
        case .bool(let v):
            hasher.combine(2)
            hasher.combine(v)
        case .fd(let v):
            hasher.combine(3)
            hasher.combine(v)
        case .float(let v):
            hasher.combine(4)
            hasher.combine(v.bitPattern)
        case .int(let v):
            hasher.combine(5)
            hasher.combine(v)
        case .map(let pairs):
            hasher.combine(6)
            hasher.combine(pairs.count)
            for (k, v) in pairs {
                hasher.combine(k)
                hasher.combine(v)
            }
        case .seq(let v):
            hasher.combine(7)
            hasher.combine(v)
        case .str(let v):
            hasher.combine(8)
            for u in v.unicodeScalars {
                hasher.combine(u.value)
            }
        case .timestamp(let v):
            hasher.combine(9)
            hasher.combine(v)
        }
    }
}

// MARK: - Literals

extension Argdata: ExpressibleByNilLiteral {
    /// `nil` is ``null``.
    public init(nilLiteral: ()) {
        self = .null
    }
}

extension Argdata: ExpressibleByBooleanLiteral {
    /// A boolean literal is a ``bool(_:)``.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

extension Argdata: ExpressibleByIntegerLiteral {
    /// An integer literal is an ``int(_:)``.
    public init(integerLiteral value: Int) {
        self = .int(Int128(value))
    }
}

extension Argdata: ExpressibleByFloatLiteral {
    /// A float literal is a ``float(_:)``.
    public init(floatLiteral value: Double) {
        self = .float(value)
    }
}

extension Argdata: ExpressibleByStringLiteral {
    /// A string literal is a ``str(_:)``.
    public init(stringLiteral value: String) {
        self = .str(value)
    }
}

extension Argdata: ExpressibleByArrayLiteral {
    /// An array literal is a ``seq(_:)``.
    public init(arrayLiteral elements: Argdata...) {
        self = .seq(elements)
    }
}

extension Argdata: ExpressibleByDictionaryLiteral {
    /// A dictionary literal is a ``map(_:)`` with its pairs in the order
    /// written.
    public init(dictionaryLiteral elements: (Argdata, Argdata)...) {
        self = .map(elements.map { (key: $0.0, value: $0.1) })
    }
}

// MARK: - Typed access

extension Argdata {
    /// Whether this is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The boolean; `EINVAL` for another type.
    public func bool() throws(Errno) -> Bool {
        guard case .bool(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The bytes of a ``binary(_:)``; `EINVAL` for another type.
    public func binary() throws(Errno) -> [UInt8] {
        guard case .binary(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The descriptor; `EINVAL` for another type, `EBADF` for an invalid
    /// descriptor.
    public func fileDescriptor() throws(Errno) -> FileDescriptor {
        guard case .fd(let v) = self else { throw .invalidArgument }
        guard v.rawValue >= 0 else { throw .badFileDescriptor }
        return v
    }

    /// The double; `EINVAL` for another type.
    public func float() throws(Errno) -> Double {
        guard case .float(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The integer as a `T`; `EINVAL` for another type, `ERANGE` when it
    /// does not fit.
    public func integer<T: FixedWidthInteger>(
        as type: T.Type = Int.self
    ) throws(Errno) -> T {
        guard case .int(let v) = self else { throw .invalidArgument }
        guard let t = T(exactly: v) else { throw .outOfRange }
        return t
    }

    /// The string; `EINVAL` for another type.
    public func string() throws(Errno) -> String {
        guard case .str(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The timestamp; `EINVAL` for another type.
    public func timestamp() throws(Errno) -> Timestamp {
        guard case .timestamp(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The elements of a sequence; `EINVAL` for another type.
    public func sequence() throws(Errno) -> [Argdata] {
        guard case .seq(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The pairs of a map, in order; `EINVAL` for another type.
    public func pairs() throws(Errno) -> [(key: Argdata, value: Argdata)] {
        guard case .map(let v) = self else { throw .invalidArgument }
        return v
    }

    /// The value of the first pair of a map whose key is `key`, or `nil`;
    /// `EINVAL` when this is not a map.
    public func value(forKey key: Argdata) throws(Errno) -> Argdata? {
        try pairs().first { $0.key == key }?.value
    }
}
