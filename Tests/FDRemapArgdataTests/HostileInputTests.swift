import Testing
import SystemPackage
@testable import FDRemap

/// Values at the edges of size: a correct result, bounded in memory.
@Suite struct HostileInputTests {
    @Test func aBinaryOf256MiBRoundTrips() throws {
        let size = 256 << 20
        var bytes = [UInt8](repeating: 0, count: size)
        bytes[0] = 1
        bytes[size - 1] = 0xFE
        let tree: Argdata = ["blob": .binary(bytes)]
        let (encoded, fds) = tree.serialize()
        #expect(fds.isEmpty)
        // map tag, key (length, str tag, "blob", NUL), value length in
        // 4 bytes of 7 bits (2^28 + 1 needs 29 bits: 5 groups), binary tag.
        #expect(encoded.count == 1 + 1 + 6 + 5 + 1 + size)
        let back = try Argdata(decoding: encoded, fds: [])
        let value = try #require(try back.value(forKey: "blob"))
        let decoded = try value.binary()
        #expect(decoded.count == size)
        #expect(decoded.first == 1 && decoded.last == 0xFE)
    }
}
