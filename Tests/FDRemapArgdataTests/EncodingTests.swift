// Every row of the spec's encoding table and its examples, as exact bytes,
// through the C constructors and through the Swift face, and read back.
import CArgdata
import FDRemap
import Glibc
import SystemPackage
import Testing

@Suite struct SpecExamples {
    @Test func theSpecsExamplesAsExactBytes() throws {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        #expect(cSerialize(n.int(0)).bytes == hex("05"))
        #expect(cSerialize(n.int(-1)).bytes == hex("05 ff"))
        #expect(cSerialize(n.int(128)).bytes == hex("05 00 80"))
        #expect(cSerialize(n.str("hello")).bytes == hex("08 68 65 6c 6c 6f 00"))
        let seq = n.seq([n.int(0), n.buffer([2, 1]), n.str("A")])
        #expect(cSerialize(seq).bytes == hex("07 81 05 82 02 01 83 08 41 00"))

        let swift: [(Argdata, String)] = [
            (0, "05"), (-1, "05 ff"), (128, "05 00 80"),
            ("hello", "08 68 65 6c 6c 6f 00"), (true, "02 01"), (false, "02"),
            ([0, true, "A"], "07 81 05 82 02 01 83 08 41 00"),
        ]
        for (value, bytes) in swift {
            #expect(value.serialize().bytes == hex(bytes), "\(value)")
            #expect(try Argdata(decoding: hex(bytes)) == value)
        }
    }

    @Test func nullIsTheEmptyBuffer() throws {
        #expect(Argdata.null.serialize().bytes == [])
        #expect(try Argdata(decoding: []) == .null)
        // A null element is a zero length.
        #expect(Argdata.seq([nil, 1]).serialize().bytes == hex("07 80 82 05 01"))
        withDecoded([]) { ad in
            var b = false
            #expect(argdata_get_bool(ad, &b) == EINVAL)
            var it = argdata_seq_iterator_t()
            argdata_seq_iterate(ad, &it)
            #expect(it.index == iteratorInvalid)   // null is no sequence
        }
    }

    @Test func binaryIsTheRawBytes() throws {
        let payload: [UInt8] = [0, 1, 0xff, 0x80, 0]
        #expect(Argdata.binary(payload).serialize().bytes == [1] + payload)
        #expect(Argdata.binary([]).serialize().bytes == [1])
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        payload.withUnsafeBytes { raw in
            let ad = n.keep(argdata_create_binary(raw.baseAddress, raw.count))
            #expect(cSerialize(ad).bytes == [1] + payload)
            var p: UnsafeRawPointer? = nil
            var len = 0
            #expect(argdata_get_binary(ad, &p, &len) == 0)
            #expect(p == raw.baseAddress && len == payload.count)  // not copied
        }
        #expect(try Argdata(decoding: [1] + payload) == .binary(payload))
        // No bytes may come with no pointer.
        #expect(cSerialize(n.keep(argdata_create_binary(nil, 0))).bytes == [1])
        #expect(cSerialize(n.keep(argdata_create_str(nil, 0))).bytes == [8, 0])
    }

    @Test func boolIsNothingOrOne() throws {
        withDecoded(hex("02")) { ad in
            var b = true
            #expect(argdata_get_bool(ad, &b) == 0 && b == false)
        }
        withDecoded(hex("02 01")) { ad in
            var b = false
            #expect(argdata_get_bool(ad, &b) == 0 && b == true)
        }
    }

    @Test func fdIsFourBytesBigEndian() throws {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let (bytes, fds) = cSerialize(n.fd(1234))
        #expect(bytes == hex("03 00 00 00 00") && fds == [1234])
        #expect(argdata_create_fd(-1) == nil && errno == EBADF)
        // Index 0x01020304 of a decoded buffer goes through convert_fd.
        var table = [CInt](repeating: -1, count: 0x0102_0305)
        table[0x0102_0304] = 7
        withDecoded(hex("03 01 02 03 04"), table: table) { ad in
            var fd: CInt = -1
            #expect(argdata_get_fd(ad, &fd) == 0 && fd == 7)
            #expect(cSerialize(ad) == (hex("03 00 00 00 00"), [7]))
        }
        // FFFFFFFF is the invalid descriptor: EBADF, written back as is.
        withDecoded(hex("03 ff ff ff ff"), table: [5]) { ad in
            var fd: CInt = -1
            #expect(argdata_get_fd(ad, &fd) == EBADF)
            #expect(cSerialize(ad) == (hex("03 ff ff ff ff"), []))
        }
        #expect(Argdata.fd(Argdata.invalidDescriptor).serialize().bytes == hex("03 ff ff ff ff"))
        #expect(try Argdata(decoding: hex("03 ff ff ff ff")) == .fd(Argdata.invalidDescriptor))
    }

    @Test(arguments: [
        (0.0, "00 00 00 00 00 00 00 00"),
        (-0.0, "80 00 00 00 00 00 00 00"),
        (1.0, "3f f0 00 00 00 00 00 00"),
        (-2.5, "c0 04 00 00 00 00 00 00"),
        (Double.infinity, "7f f0 00 00 00 00 00 00"),
        (-Double.infinity, "ff f0 00 00 00 00 00 00"),
        (Double(bitPattern: 0x7ff8_0000_0000_0000), "7f f8 00 00 00 00 00 00"),
        (Double(bitPattern: 0xfff4_dead_beef_0001), "ff f4 de ad be ef 00 01"),  // signalling, payload
        (Double.leastNonzeroMagnitude, "00 00 00 00 00 00 00 01"),
        (Double.greatestFiniteMagnitude, "7f ef ff ff ff ff ff ff"),
    ])
    func floatIsEightBytesBigEndianBitForBit(value: Double, payload: String) throws {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let ad = n.keep(argdata_create_float(value))
        #expect(cSerialize(ad).bytes == [4] + hex(payload))
        var back = 0.0
        #expect(argdata_get_float(ad, &back) == 0)
        #expect(back.bitPattern == value.bitPattern)
        #expect(Argdata.float(value).serialize().bytes == [4] + hex(payload))
        let decoded = try Argdata(decoding: [4] + hex(payload))
        #expect(try decoded.float().bitPattern == value.bitPattern)
    }

    @Test(arguments: [
        (Int128(0), ""), (1, "01"), (127, "7f"), (128, "00 80"), (255, "00 ff"),
        (256, "01 00"), (32767, "7f ff"), (32768, "00 80 00"),
        (-1, "ff"), (-128, "80"), (-129, "ff 7f"), (-256, "ff 00"), (-32769, "ff 7f ff"),
        (Int128(Int64.max), "7f ff ff ff ff ff ff ff"),
        (Int128(Int64.min), "80 00 00 00 00 00 00 00"),
        (Int128(UInt64.max), "00 ff ff ff ff ff ff ff ff"),
        (Int128(UInt64.max) + 1, "01 00 00 00 00 00 00 00 00"),
        (Int128.max, "7f ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"),
        (Int128.min, "80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
    ])
    func intIsShortestTwosComplement(value: Int128, payload: String) throws {
        let expected = [5] + hex(payload)
        #expect(Argdata.int(value).serialize().bytes == expected)
        #expect(try Argdata(decoding: expected) == .int(value))
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        if let s = Int(exactly: value) {
            #expect(cSerialize(n.keep(argdata_create_int_s(s))).bytes == expected)
        }
        if let u = UInt(exactly: value) {
            #expect(cSerialize(n.keep(argdata_create_int_u(u))).bytes == expected)
        }
    }

    @Test func mapIsKeyValueSubFieldsInOrder() throws {
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        // Keys are neither sorted nor de-duplicated.
        let map = n.map([(n.str("b"), n.int(1)), (n.str("a"), n.int(2)), (n.str("b"), n.int(3))])
        let expected = [6] + field(hex("08 62 00")) + field(hex("05 01"))
            + field(hex("08 61 00")) + field(hex("05 02"))
            + field(hex("08 62 00")) + field(hex("05 03"))
        #expect(cSerialize(map).bytes == expected)
        let swift: Argdata = ["b": 1, "a": 2, "b": 3]
        #expect(swift.serialize().bytes == expected)
        #expect(try Argdata(decoding: expected) == swift)
        #expect(try swift.pairs().map(\.key) == ["b", "a", "b"])
        #expect(try swift.value(forKey: "b") == 1)
        // Any value can be a key.
        let odd: Argdata = [[1, 2]: nil, ["k": "v"]: 2.5, nil: .fd(.standardError)]
        let (bytes, fds) = odd.serialize()
        #expect(try Argdata(decoding: bytes, fds: fds) == odd)
        #expect(Argdata.map([]).serialize().bytes == [6])
    }

    @Test func seqIsSubFields() throws {
        #expect(Argdata.seq([]).serialize().bytes == [7])
        #expect(Argdata.seq([[], [:]]).serialize().bytes == hex("07 81 07 81 06"))
        #expect(try Argdata(decoding: hex("07 81 07 81 06")) == [[], [:]])
    }

    @Test func strIsUTF8WithOneRequiredNul() throws {
        let s = "h\u{e9}\u{1F600}\u{0}x"   // an inner NUL is allowed
        let bytes = [8] + Array(s.utf8) + [0]
        #expect(Argdata.str(s).serialize().bytes == bytes)
        #expect(try Argdata(decoding: bytes) == .str(s))
        #expect(Argdata.str("").serialize().bytes == hex("08 00"))
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let ad = n.str("abc")
        var p: UnsafePointer<CChar>? = nil
        var len = 0
        #expect(argdata_get_str(ad, &p, &len) == 0 && len == 3)
        #expect(argdata_get_str_c(ad, &p) == 0 && String(cString: p!) == "abc")
    }

    @Test(arguments: [
        (Int64(0), Int64(0), ""), (0, 1, "01"), (-1, 999_999_999, "ff"),
        (1, 0, "3b 9a ca 00"), (-1, 0, "c4 65 36 00"), (-1, 5, "c4 65 36 05"),
        (1_700_000_000, 123, "17 97 9c fe 36 2a 00 7b"),
        (Int64.max, 999_999_999, "1d cd 64 ff ff ff ff ff ff ff ff ff"),
        (Int64.min, 0, "e2 32 9b 00 00 00 00 00 00 00 00 00"),
    ])
    func timestampIsNanosecondsLikeAnInt(sec: Int64, nsec: Int64, payload: String) throws {
        let expected = [9] + hex(payload)
        var ts = timespec(tv_sec: Int(sec), tv_nsec: Int(nsec))
        let n = Nodes()
        defer { withExtendedLifetime(n) {} }
        let ad = n.keep(argdata_create_timestamp(&ts))
        #expect(cSerialize(ad).bytes == expected)
        var back = timespec()
        #expect(argdata_get_timestamp(ad, &back) == 0)
        #expect(back.tv_sec == ts.tv_sec && back.tv_nsec == ts.tv_nsec)
        let t = Argdata.Timestamp(seconds: sec, nanoseconds: nsec)
        #expect(Argdata.timestamp(t).serialize().bytes == expected)
        #expect(try Argdata(decoding: expected) == .timestamp(t))
    }

    @Test func timestampsBeyondTimespecAndTheirRange() throws {
        var ts = timespec(tv_sec: 0, tv_nsec: 1_000_000_000)
        #expect(argdata_create_timestamp(&ts) == nil && errno == EINVAL)
        ts.tv_nsec = -1
        #expect(argdata_create_timestamp(&ts) == nil && errno == EINVAL)
        // 2^95 ns does not fit a timespec: ERANGE in C, a value in Swift.
        let big = Argdata.Timestamp(nanosecondsSince1970: Int128(1) << 95)
        let bytes = Argdata.timestamp(big).serialize().bytes
        #expect(bytes == [9, 0, 0x80] + [UInt8](repeating: 0, count: 11))
        withDecoded(bytes) { ad in
            var back = timespec()
            #expect(argdata_get_timestamp(ad, &back) == ERANGE)
        }
        #expect(try Argdata(decoding: bytes) == .timestamp(big))
        #expect(big.seconds == (Int128(1) << 95) / 1_000_000_000)
        // Beyond 128 bits: ERANGE in Swift too.
        #expect(throws: Errno.outOfRange) {
            try Argdata(decoding: [9, 1] + [UInt8](repeating: 0, count: 16))
        }
    }

    @Test func subFieldLengthsAreShortestSevenBitGroups() {
        // 0 -> 80, 127 -> ff, 128 -> 01 80, 16383 -> 7f ff, 16384 -> 01 00 80
        for (len, prefix) in [(0, "80"), (127, "ff"), (128, "01 80"), (16383, "7f ff"),
                              (16384, "01 00 80")] {
            let element: Argdata = len == 0 ? nil : .binary([UInt8](repeating: 7, count: len - 1))
            let bytes = Argdata.seq([element]).serialize().bytes
            #expect(Array(bytes.prefix(1 + prefix.split(separator: " ").count))
                    == [7] + hex(prefix), "length \(len)")
            #expect(bytes.count == 1 + hex(prefix).count + len)
        }
    }
}
