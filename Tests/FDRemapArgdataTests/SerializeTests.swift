// Descriptor renumbering and de-duplication, the size query, the linear
// fallback of the descriptor table, and depth: trees and buffers nested
// 100,000 levels, walked with and without memory for the walker's stack.
import CFDRemapTestHooks
import CArgdata
import CFDRemapKernel
import FDRemap
import Glibc
import SystemPackage
import Testing
import FDRemapTestSupport

/// A sequence nested depth levels around the value of inner, as bytes.
func nestedSeqBytes(depth: Int, inner: [UInt8]) -> [UInt8] {
    var bytes = inner
    for _ in 0..<depth {
        bytes = [7] + field(bytes)
    }
    return bytes
}

@Suite struct Descriptors {
    @Test func renumberedInOrderOfFirstAppearanceKeysBeforeValues() {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        // Depth first, each key before its value: 9, 4, 7, 4, 9, 2, 7.
        let inner = n.seq([n.fd(7), n.fd(4)])
        let map = n.map([(n.fd(9), n.fd(4)), (n.str("k"), inner), (n.fd(9), n.fd(2))])
        let root = n.seq([map, n.fd(7)])
        let (bytes, fds) = cSerialize(root)
        #expect(fds == [9, 4, 7, 2])
        #expect(cFDCount(root) == 7)   // an upper bound: every leaf counted
        // The indices written follow the list.
        let decoded = withDecoded(bytes, table: fds) { ad in cSerialize(ad) }
        #expect(decoded.bytes == bytes && decoded.fds == fds)
        // The same tree from Swift.
        let swift: Argdata = [
            [.fd(FileDescriptor(rawValue: 9)): .fd(FileDescriptor(rawValue: 4)),
             "k": [.fd(FileDescriptor(rawValue: 7)), .fd(FileDescriptor(rawValue: 4))],
             .fd(FileDescriptor(rawValue: 9)): .fd(FileDescriptor(rawValue: 2))],
            .fd(FileDescriptor(rawValue: 7)),
        ]
        let s = swift.serialize()
        #expect(s.bytes == bytes && s.fds.map(\.rawValue) == fds)
    }

    @Test func aDescriptorUsedManyTimesIsListedOnce() {
        let v = Argdata.seq(Array(repeating: .fd(.standardOutput), count: 50))
        let (bytes, fds) = v.serialize()
        #expect(fds == [.standardOutput])
        #expect(bytes == [7] + Array(repeating: field(hex("03 00 00 00 00")), count: 50).joined())
    }

    @Test func negativeConversionsAreWrittenAsFFFFFFFFAndNotListed() {
        // Decoded indices 0, 1, 2, 1 converting to 5, -1, 6, -1.
        let bytes = [7] + [0, 1, 2, 1].map { field([3, 0, 0, 0, UInt8($0)]) }.joined()
        let (out, fds) = withDecoded(Array(bytes), table: [5, -1, 6]) { cSerialize($0) }
        #expect(fds == [5, 6])
        #expect(out == [7] + [hex("03 00 00 00 00"), hex("03 ff ff ff ff"),
                              hex("03 00 00 00 01"), hex("03 ff ff ff ff")].map(field).joined())
        // No conversion at all: every one is FFFFFFFF.
        let none = withDecoded(Array(bytes), table: nil) { cSerialize($0) }
        #expect(none.fds.isEmpty)
        #expect(none.bytes == [7] + Array(repeating: field(hex("03 ff ff ff ff")), count: 4).joined())
    }

    @Test func reserialisingADecodedBufferRenumbersTheSameWay() {
        // Indices 3, 0, 3, 1 of a message whose table is [10, 11, 12, 13]
        // become 0, 1, 0, 2 with the list [13, 10, 11].
        let bytes = Array([7] + [3, 0, 3, 1].map { field([3, 0, 0, 0, UInt8($0)]) }.joined())
        let (out, fds) = withDecoded(bytes, table: [10, 11, 12, 13]) { cSerialize($0) }
        #expect(fds == [13, 10, 11])
        #expect(out == [7] + [0, 1, 0, 2].map { field([3, 0, 0, 0, UInt8($0)]) }.joined())
        // Without a list each descriptor is written as its number, as the
        // reference does: what convert_fd makes of a decoded index, a made
        // one's own (argdata_create_fd(12) is 03 0000000c), FFFFFFFF where
        // there is none.
        #expect(withDecoded(bytes, table: [10, 11, 12, 13]) { cSerialize($0, collect: false) }
                == ([7] + [13, 10, 13, 11].map { field([3, 0, 0, 0, UInt8($0)]) }.joined(), []))
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        #expect(cSerialize(n.fd(12), collect: false) == (hex("03 00 00 00 0c"), []))
        #expect(cSerialize(n.seq([n.fd(8)]), collect: false) == (hex("07 85 03 00 00 00 08"), []))
        #expect(withDecoded(bytes, table: nil) { cSerialize($0, collect: false) }
                == ([7] + Array(repeating: field(hex("03 ff ff ff ff")), count: 4).joined(), []))
    }

    @Test func aDecodedBufferInsideAMadeTreeShareTheList() {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        var table: UnsafeBufferPointer<CInt> = UnsafeBufferPointer(start: nil, count: 0)
        let raw = UnsafeMutablePointer<CInt>.allocate(capacity: 2)
        defer { raw.deallocate() }
        raw[0] = 40
        raw[1] = 41
        table = UnsafeBufferPointer(start: raw, count: 2)
        withUnsafeMutablePointer(to: &table) { arg in
            let inner = n.buffer([7] + field(hex("03 00 00 00 01")) + field(hex("03 00 00 00 00")),
                                 convert: tableConvert, arg: UnsafeMutableRawPointer(arg))
            let root = n.seq([n.fd(41), inner, n.fd(5)])
            let (_, fds) = cSerialize(root)
            #expect(fds == [41, 40, 5])
        }
    }

    @Test func hashTableAndLinearFallbackGiveTheSameOutput() {
        // 3,000 distinct descriptors, each used twice, in a scrambled order.
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        var rng = SplitMix64(seed: 42)
        let numbers = (0..<3000).map { CInt($0 * 7 + 3) }.shuffled(using: &rng)
        let leaves = (numbers + numbers.shuffled(using: &rng)).map { n.fd($0) }
        let root = n.seq(leaves)
        let fast = cSerialize(root)
        #expect(fast.fds == numbers)
        // Every allocation of the table fails, or only a later growth: the
        // same output, and nothing left allocated.
        for k: UInt64 in [1, 2, 3, 5, 8] {
            let before = fdr_mem_inuse_thread()
            var len = 0
            argdata_serialized_length(root, &len, nil)
            var bytes = [UInt8](repeating: 0, count: len)
            var fds = [CInt](repeating: -1, count: leaves.count)
            fdr_fail_arm(FDR_FAIL_MALLOC, k)
            let used = argdata_serialize(root, &bytes, &fds)
            let fired = fdr_fail_fired(FDR_FAIL_MALLOC)
            fdr_fail_arm(FDR_FAIL_MALLOC, 0)
            #expect(fired != 0, "allocation \(k) happened")
            #expect(bytes == fast.bytes)
            #expect(Array(fds[..<used]) == fast.fds)
            #expect(fdr_mem_inuse_thread() == before)
        }
    }
}

@Suite struct Depth {
    static let deep = 100_000

    @Test func aBufferNested100000LevelsIsWalkedWithoutRecursion() throws {
        let bytes = nestedSeqBytes(depth: Self.deep, inner: hex("03 00 00 00 00"))
        withDecoded(bytes, table: [17]) { ad in
            #expect(cFDCount(ad) == 1)
            let (out, fds) = cSerialize(ad)
            let same = out == bytes
            #expect(same && fds == [17])
            let yaml = cYAML(ad)
            #expect(yaml.contains(String(repeating: " ", count: 64) + "!fd \"17\",\n"))
            #expect(yaml.hasSuffix("\n  ],\n]\n"))
            // Linear output: the indentation stops growing.
            #expect(yaml.utf8.count < Self.deep * 2 * 80)
        }
        // Swift values nest through recursion: decoding refuses this.
        #expect(throws: Errno.argListTooLong) { try Argdata(decoding: bytes, fds: [.standardInput]) }
    }

    @Test func aMadeTreeNested100000LevelsSerialisesLikeTheBuffer() {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        var node = n.fd(17)
        for _ in 0..<Self.deep {
            node = n.seq([node])
        }
        let (out, fds) = cSerialize(node)
        let same = out == nestedSeqBytes(depth: Self.deep, inner: hex("03 00 00 00 00"))
        #expect(same)
        #expect(fds == [17])
        #expect(cFDCount(node) == 1)
    }

    @Test func swiftDecodesUpToItsMaximumDepth() throws {
        let ok = nestedSeqBytes(depth: Argdata.maximumDepth, inner: hex("05 01"))
        let v = try Argdata(decoding: ok)
        #expect(v.serialize().bytes == ok)
        let tooDeep = nestedSeqBytes(depth: Argdata.maximumDepth + 1, inner: hex("05 01"))
        #expect(throws: Errno.argListTooLong) { try Argdata(decoding: tooDeep) }
    }

    /// One level too deep, a container's malformed first element (a
    /// map's first pair) is EINVAL, as C's iterators read it as they
    /// start; a well-formed one is E2BIG.
    @Test(arguments: [
        ("07 00", EINVAL), ("06 80", EINVAL), ("06 81", EINVAL),
        ("07", E2BIG), ("07 80", E2BIG), ("06 80 80", E2BIG), ("06", E2BIG),
    ])
    func oneLevelTooDeepTheFirstElementIsReadFirst(inner: String, error: Int32) {
        let bytes = nestedSeqBytes(depth: Argdata.maximumDepth, inner: hex(inner))
        let swift = Result { () throws(Errno) in try Argdata(decoding: bytes) }
        #expect(swift == .failure(Errno(rawValue: error)))
        #expect(swift == decodeThroughC(bytes))
    }

    /// A tree of branching depth: maps and sequences mixed, with
    /// descriptors and malformed tails, `depth` levels of containers.
    private func branchy(depth: Int, rng: inout SplitMix64) -> [UInt8] {
        var bytes = hex("03 00 00 00 02")
        for level in 0..<depth {
            let sibling = [3, 0, 0, 0, UInt8(level % 5)]
            switch level % 4 {
            case 0: bytes = [7] + field(sibling) + field(bytes) + field([])
            case 1: bytes = [6] + field(bytes) + field(sibling) + field(hex("05 01")) + field(bytes.count < 64 ? bytes : [])
            case 2: bytes = [7] + field(bytes) + hex("00 81")   // malformed tail
            default: bytes = [6] + field(hex("08 6b 00")) + field(bytes)
            }
        }
        return bytes
    }

    @Test func withoutMemoryForItsStackTheWalkerRebuildsFramesAndAgrees() {
        var rng = SplitMix64(seed: 7)
        let bytes = branchy(depth: 2000, rng: &rng)
        withDecoded(bytes, table: [30, 31, 32, 33, 34]) { ad in
            let fast = cSerialize(ad)
            let fastYAML = cYAML(ad)
            let fastCount = cFDCount(ad)
            #expect(fast.bytes.count == bytes.count)
            #expect(fast.fds.count == 5)
            // The k-th allocation fails: the descriptor table's or one of
            // the walker's stack growths, whichever comes k-th.
            for k: UInt64 in [1, 2, 3, 4] {
                let before = fdr_mem_inuse_thread()
                fdr_fail_arm(FDR_FAIL_MALLOC, k)
                let slow = cSerialize(ad)
                let fired = fdr_fail_fired(FDR_FAIL_MALLOC)
                fdr_fail_arm(FDR_FAIL_MALLOC, k)
                let slowYAML = cYAML(ad)
                fdr_fail_arm(FDR_FAIL_MALLOC, k)
                let slowCount = cFDCount(ad)
                fdr_fail_arm(FDR_FAIL_MALLOC, 0)
                #expect(fired != 0)
                let sameBytes = slow.bytes == fast.bytes && slow.fds == fast.fds
                let sameYAML = slowYAML == fastYAML
                #expect(sameBytes, "k = \(k)")
                #expect(sameYAML, "k = \(k)")
                #expect(slowCount == fastCount)
                #expect(fdr_mem_inuse_thread() == before)
            }
        }
    }

    @Test func aMadeDeepTreeWithoutMemoryForTheStackToo() {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        var node = n.fd(3)
        for i in 0..<3000 {
            node = i % 2 == 0 ? n.seq([n.fd(CInt(i % 7)), node, n.int(i)]) : n.map([(n.str("k"), node)])
        }
        let fast = cSerialize(node)
        let fastYAML = cYAML(node)
        fdr_fail_arm(FDR_FAIL_MALLOC, 2)   // 1: the descriptor table
        let slow = cSerialize(node)
        fdr_fail_arm(FDR_FAIL_MALLOC, 1)
        let slowYAML = cYAML(node)
        fdr_fail_arm(FDR_FAIL_MALLOC, 0)
        let sameBytes = slow.bytes == fast.bytes && slow.fds == fast.fds
        let sameYAML = slowYAML == fastYAML
        #expect(sameBytes)
        #expect(sameYAML)
    }

    @Test func sharedValuesWhoseLengthWouldOverflowAreRefused() {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        var node = n.int(1)
        var refused = false
        for _ in 0..<70 {
            guard let next = argdata_create_seq(n.array([node, node]), 2) else {
                #expect(errno == E2BIG)
                refused = true
                break
            }
            node = n.keep(next)
        }
        #expect(refused)
        // A NULL element is refused too.
        let holes = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: 1)
        defer { holes.deallocate() }
        holes[0] = nil
        #expect(argdata_create_seq(holes, 1) == nil && errno == EINVAL)
    }
}
