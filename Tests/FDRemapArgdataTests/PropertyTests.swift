// Round trips on random trees: encode -> decode -> encode gives the same
// bytes and the same descriptor list, through Swift and through the C
// decoder's own re-serialisation.
//
// ARGDATA_PROPERTY_TREES sets the number of trees (default 100,000, split
// over a few seeds so that the runs go in parallel).
import CArgdata
import FDRemap
import Foundation
import SystemPackage
import Testing
import FDRemapTestSupport

/// Random trees: every type, empty containers, NaNs with payloads, extreme
/// integers and timestamps, negative zero, strings with NULs, line
/// separators and astral characters, repeated and invalid descriptors.
struct TreeGenerator {
    var rng: SplitMix64

    static let specialDoubles: [Double] = [
        0.0, -0.0, .infinity, -.infinity, .nan, -.nan,
        Double(bitPattern: 0x7ff0_0000_0000_0001), Double(bitPattern: 0xfff7_ffff_ffff_ffff),
        .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, 0.1, -1e300,
    ]
    static let specialInts: [Int128] = [
        0, 1, -1, 127, 128, -128, -129, 255, 256,
        Int128(Int64.max), Int128(Int64.min), Int128(Int64.max) + 1, Int128(Int64.min) - 1,
        Int128(UInt64.max), Int128(UInt64.max) + 1, .max, .min, .max - 1, .min + 1,
    ]
    static let scalars: [Unicode.Scalar] = [
        "\0", "\u{1}", "\t", "\n", "\r", "\"", "\\", " ", "a", "Z", "#", ":", "-", "?",
        "\u{7f}", "\u{80}", "\u{85}", "\u{a0}", "\u{e9}", "\u{2028}", "\u{2029}",
        "\u{feff}", "\u{fffd}", "\u{fffe}", "\u{ffff}", "\u{1F600}", "\u{10ffff}", "\u{d7ff}", "\u{e000}",
    ]

    /// A number in range (modulo bias is of no matter here; this is
    /// cheaper than Int.random in debug builds).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(rng.next() % UInt64(range.count))
    }

    mutating func string() -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<int(0...12) {
            if int(0...2) == 0 {
                s.append(Self.scalars[int(0...Self.scalars.count - 1)])
            } else {
                // Any scalar value outside the surrogates.
                var v = UInt32(truncatingIfNeeded: rng.next() % 0x110000)
                if (0xd800...0xdfff).contains(v) { v -= 0x800 }
                s.append(Unicode.Scalar(v)!)
            }
        }
        return String(s)
    }

    mutating func scalar() -> Argdata {
        switch int(0...9) {
        case 0: return .null
        case 1: return .binary((0..<int(0...20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        case 2: return .bool(int(0...1) == 1)
        case 3:
            // A few descriptors, repeated; now and then an invalid one.
            return .fd(FileDescriptor(rawValue: int(0...15) == 0 ? -1 : CInt(int(0...40))))
        case 4:
            return .float(int(0...2) == 0
                ? Self.specialDoubles[int(0...Self.specialDoubles.count - 1)]
                : Double(bitPattern: rng.next()))
        case 5:
            return .int(int(0...2) == 0
                ? Self.specialInts[int(0...Self.specialInts.count - 1)]
                : Int128(Int64(bitPattern: rng.next())) >> int(0...63))
        case 6, 7: return .str(string())
        default:
            let ns: Int128 = int(0...3) == 0
                ? Self.specialInts[int(0...Self.specialInts.count - 1)]
                : Int128(Int64(bitPattern: rng.next())) * Int128(int(1...1_000_000))
            return .timestamp(.init(nanosecondsSince1970: ns))
        }
    }

    mutating func tree(depth: Int = 0) -> Argdata {
        guard depth < 5, int(0...2) > 0 else { return scalar() }
        let n = int(0...3) == 0 ? 0 : int(1...5)   // empty containers often
        if int(0...1) == 0 {
            return .seq((0..<n).map { _ in tree(depth: depth + 1) })
        }
        return .map((0..<n).map { _ in (key: tree(depth: depth + 2), value: tree(depth: depth + 1)) })
    }
}

/// How many trees the property runs check: the environment's count, or
/// 100,000.
let propertyTreeCount: Int = {
    ProcessInfo.processInfo.environment["ARGDATA_PROPERTY_TREES"].flatMap(Int.init) ?? 100_000
}()

@Suite struct RoundTrips {
    static let seeds: [UInt64] = [1, 2, 3, 4]

    /// Checks one tree; false (with an issue recorded) when it fails.
    static func roundTrip(_ tree: Argdata) -> Bool {
        let (bytes, fds) = tree.serialize()
        guard let back = try? Argdata(decoding: bytes, fds: fds) else {
            Issue.record("did not decode: \(tree)")
            return false
        }
        // Decoding maps each index back to the same descriptor, so the
        // tree comes back whole.
        guard back == tree else {
            Issue.record("decoded differently: \(tree) -> \(back)")
            return false
        }
        let again = back.serialize()
        guard again.bytes == bytes, again.fds == fds else {
            Issue.record("re-encoded differently: \(tree)")
            return false
        }
        // The C library reads the bytes as the same tree.
        guard decodeThroughC(bytes, fds: fds) == .success(tree) else {
            Issue.record("C decoded differently: \(tree)")
            return false
        }
        // The C decoder's own re-serialisation renumbers the same way.
        let table = fds.map(\.rawValue)
        let c = withDecoded(bytes, table: table) { cSerialize($0) }
        guard c.bytes == bytes, c.fds == table else {
            Issue.record("C re-serialised differently: \(tree)")
            return false
        }
        // Descriptors: first appearance order, each once, valid ones only.
        guard Set(table).count == table.count, !table.contains(where: { $0 < 0 }) else {
            Issue.record("descriptor list \(table)")
            return false
        }
        return true
    }

    @Test(arguments: seeds)
    func encodeDecodeEncodeIsStable(seed: UInt64) {
        var gen = TreeGenerator(rng: SplitMix64(seed: seed))
        let count = propertyTreeCount / Self.seeds.count
        var checked = 0
        for _ in 0..<count {
            guard Self.roundTrip(gen.tree()) else { break }
            checked += 1
        }
        #expect(checked == count)
        print("argdata round trips (seed \(seed)): \(checked) random trees")
    }

    @Test func hashingAgreesWithEquality() {
        var gen = TreeGenerator(rng: SplitMix64(seed: 99))
        for _ in 0..<500 {
            let t = gen.tree()
            let (bytes, fds) = t.serialize()
            let u = try? Argdata(decoding: bytes, fds: fds)
            #expect(u == t && u?.hashValue == t.hashValue)
        }
        #expect(Argdata.float(.nan) == .float(.nan))
        #expect(Argdata.float(0.0) != .float(-0.0))
        #expect(Argdata.str("\u{e9}") != .str("e\u{301}"))   // bytes, not canonical equivalence
    }
}
