// Every malformed-input rule of the spec: each gives its error code, in C
// and through Swift decoding, and iterators give the valid elements first.
import CArgdata
import FDRemap
import Glibc
import SystemPackage
import Testing
import FDRemapTestSupport

/// The error code of each C getter on bytes (0: it read a value).
private func getters(_ bytes: [UInt8], table: [CInt]? = []) -> [String: CInt] {
    withDecoded(bytes, table: table) { ad in
        var p: UnsafeRawPointer? = nil
        var s: UnsafePointer<CChar>? = nil
        var n = 0
        var b = false
        var fd: CInt = 0
        var d = 0.0
        var i = 0
        var u: UInt = 0
        var ts = timespec()
        return [
            "binary": argdata_get_binary(ad, &p, &n),
            "bool": argdata_get_bool(ad, &b),
            "fd": argdata_get_fd(ad, &fd),
            "float": argdata_get_float(ad, &d),
            "int_s": argdata_get_int_s(ad, &i, Int.min, Int.max),
            "int_u": argdata_get_int_u(ad, &u, UInt.max),
            "str": argdata_get_str(ad, &s, &n),
            "str_c": argdata_get_str_c(ad, &s),
            "timestamp": argdata_get_timestamp(ad, &ts),
        ]
    }
}

/// The getters that do not fail with EINVAL ("another type").
private func typed(_ bytes: [UInt8], table: [CInt]? = []) -> [String: CInt] {
    getters(bytes, table: table).filter { $0.value != EINVAL }
}

@Suite struct MalformedInput {
    @Test(arguments: ["02 00", "02 01 01", "02 02", "02 01 00"])
    func boolWithAWrongPayload(bytes: String) {
        #expect(typed(hex(bytes)).isEmpty)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes)) }
    }

    @Test(arguments: ["03", "03 00 00 00", "03 00 00 00 00 00"])
    func fdWithAWrongPayloadLength(bytes: String) {
        #expect(typed(hex(bytes), table: [5]).isEmpty)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes), fds: [.standardInput]) }
    }

    @Test func fdThatCannotBeConverted() throws {
        // FFFFFFFF, an index past the table, a negative conversion, no
        // conversion at all: EBADF.
        #expect(typed(hex("03 ff ff ff ff"), table: [4]) == ["fd": EBADF])
        #expect(typed(hex("03 00 00 00 01"), table: [4]) == ["fd": EBADF])
        #expect(typed(hex("03 00 00 00 00"), table: [-3]) == ["fd": EBADF])
        #expect(typed(hex("03 00 00 00 00"), table: nil) == ["fd": EBADF])
        #expect(typed(hex("03 00 00 00 00"), table: [4]) == ["fd": 0])
        #expect(try Argdata(decoding: hex("03 00 00 00 01"), fds: [.standardError])
                == .fd(Argdata.invalidDescriptor))
        #expect(throws: Errno.badFileDescriptor) {
            try Argdata(decoding: hex("03 ff ff ff ff")).fileDescriptor()
        }
    }

    @Test(arguments: ["04", "04 00 00 00 00 00 00 00", "04 00 00 00 00 00 00 00 00 00"])
    func floatWithAWrongPayloadLength(bytes: String) {
        #expect(typed(hex(bytes)).isEmpty)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes)) }
    }

    @Test(arguments: ["08", "08 41", "08 41 42", "08 00 41"])
    func stringWithoutItsFinalNul(bytes: String) {
        #expect(typed(hex(bytes)).isEmpty)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes)) }
    }

    @Test(arguments: [
        "80",            // a stray continuation byte
        "c0 80",         // overlong NUL
        "c1 bf",         // overlong
        "e0 80 80",      // overlong
        "f0 80 80 80",   // overlong
        "ed a0 80",      // surrogate U+D800
        "ed bf bf",      // surrogate U+DFFF
        "f4 90 80 80",   // beyond U+10FFFF
        "f5 80 80 80", "ff", "fe",
        "e2 82",         // cut short
        "41 e2 82 41",   // cut short inside
        "c3 41",         // missing continuation
    ])
    func stringThatIsNotUTF8(bytes: String) {
        let encoded = [8] + hex(bytes) + [0]
        #expect(typed(encoded) == ["str": EILSEQ, "str_c": EILSEQ])
        #expect(throws: Errno.illegalByteSequence) { try Argdata(decoding: encoded) }
        // Refused at construction too.
        let raw = hex(bytes).map { CChar(bitPattern: $0) }
        #expect(argdata_create_str(raw, raw.count) == nil && errno == EILSEQ)
    }

    @Test func boundaryCodePointsAreValid() throws {
        for s in ["\u{7f}", "\u{80}", "\u{7ff}", "\u{800}", "\u{d7ff}", "\u{e000}",
                  "\u{fffd}", "\u{ffff}", "\u{10000}", "\u{10ffff}", "\u{0}"] {
            let encoded = [8] + Array(s.utf8) + [0]
            #expect(typed(encoded)["str"] == 0, "\(Array(s.utf8))")
            #expect(try Argdata(decoding: encoded) == .str(s))
        }
    }

    @Test func strCWithAnInnerNul() {
        #expect(typed(hex("08 41 00 42 00")) == ["str": 0, "str_c": EILSEQ])
    }

    @Test func integersOutsideTheRequestedRange() {
        withDecoded(hex("05 00 80")) { ad in   // 128
            var c: Int8 = 0
            var i: Int = 0
            var u: UInt = 0
            #expect(argdata_get_int_s(ad, &i, -128, 127) == ERANGE)
            #expect(argdata_get_int_s(ad, &i, -128, 128) == 0 && i == 128)
            #expect(argdata_get_int_u(ad, &u, 127) == ERANGE)
            #expect(argdata_get_int_schar(ad, &c) == ERANGE)
        }
        withDecoded(hex("05 ff")) { ad in      // -1
            var u: UInt = 0
            var i: Int = 0
            #expect(argdata_get_int_u(ad, &u, UInt.max) == ERANGE)
            #expect(argdata_get_int_s(ad, &i, 0, 10) == ERANGE)
        }
        // 2^64 fits neither 64-bit getter.
        #expect(typed(hex("05 01 00 00 00 00 00 00 00 00")) == ["int_s": ERANGE, "int_u": ERANGE])
        // 2^63 only the unsigned one.
        #expect(typed(hex("05 00 80 00 00 00 00 00 00 00")) == ["int_s": ERANGE, "int_u": 0])
        // Beyond 128 bits: ERANGE in Swift.
        #expect(throws: Errno.outOfRange) {
            try Argdata(decoding: [5, 1] + [UInt8](repeating: 0, count: 16))
        }
        #expect(throws: Errno.outOfRange) { try Argdata.int(300).integer(as: UInt8.self) }
        #expect(throws: Errno.invalidArgument) { try Argdata.str("1").integer() }
    }

    @Test(arguments: [
        ("05 00 01", Int128(1)), ("05 00 00 00 00 00 00 00 00 00 00 00 01", 1),
        ("05 ff ff", -1), ("05 ff ff ff ff ff ff ff ff ff ff 80", -128),
        ("05 00", 0), ("05 00 00", 0), ("05 ff 7f", -129),
        ("05 00 00 ff ff ff ff ff ff ff ff", Int128(UInt64.max)),
    ])
    func nonMinimalIntegersAreAccepted(bytes: String, value: Int128) throws {
        #expect(try Argdata(decoding: hex(bytes)) == .int(value))
        if let v = Int(exactly: value) {
            withDecoded(hex(bytes)) { ad in
                var i = 0
                #expect(argdata_get_int_s(ad, &i, Int.min, Int.max) == 0 && i == v)
            }
        }
    }

    @Test func timestampsOutsideTimespec() {
        // 2^95 ns: beyond a 64-bit tv_sec.
        #expect(typed([9, 0, 0x80] + [UInt8](repeating: 0, count: 11))["timestamp"] == ERANGE)
        // Non-minimal timestamps read as their value.
        withDecoded(hex("09 00 00 00 3b 9a ca 00")) { ad in
            var ts = timespec()
            #expect(argdata_get_timestamp(ad, &ts) == 0 && ts.tv_sec == 1 && ts.tv_nsec == 0)
        }
    }

    @Test(arguments: ["00", "0a", "ff", "0a 01 02"])
    func unknownTagsAreNoType(bytes: String) {
        #expect(typed(hex(bytes)).isEmpty)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes)) }
        // Serialised as they are: a decoded value is copied verbatim.
        withDecoded(hex(bytes)) { ad in
            #expect(cSerialize(ad).bytes == hex(bytes))
        }
    }

    /// Elements of a sequence in C: those read, and the final index
    /// (ARGDATA_ITERATOR_END or _INVALID).
    private func seqElements(_ bytes: [UInt8]) -> (elements: [[UInt8]], end: Int) {
        withDecoded(bytes) { ad in
            var it = argdata_seq_iterator_t()
            var out: [[UInt8]] = []
            var e: OpaquePointer? = nil
            argdata_seq_iterate(ad, &it)
            while argdata_seq_get(&it, &e) {
                #expect(it.index == out.count, "the index counts the elements")
                out.append(cSerialize(e!).bytes)
                argdata_seq_next(&it)
            }
            return (out, it.index)
        }
    }

    @Test(arguments: [
        ("07 81 05 00 81", "a length starting with 00"),
        ("07 81 05 85 05", "a length past the end"),
        ("07 81 05 05", "a length cut short"),
        ("07 81 05 01 02 03 04 05 06 07 08 09 0a 81", "a length that overflows"),
        ("07 81 05 7f 7f 7f 7f 7f 7f 7f 7f 7f 7f 80", "a length that overflows"),
    ])
    func malformedSubFieldsEndTheIterationAfterTheValidElements(bytes: String, why: String) throws {
        let (elements, end) = seqElements(hex(bytes))
        #expect(elements == [hex("05")], "\(why)")
        #expect(end == iteratorInvalid, "\(why)")
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: hex(bytes)) }
        // Serialising keeps the malformed tail verbatim: same length, same bytes.
        withDecoded(hex(bytes)) { ad in #expect(cSerialize(ad).bytes == hex(bytes)) }
    }

    @Test func wellFormedSequencesEndWithoutError() {
        #expect(seqElements(hex("07")) == ([], iteratorEnd))
        #expect(seqElements(hex("07 80 81 05")) == ([[], [5]], iteratorEnd))
        #expect(seqElements(hex("06")).end == iteratorInvalid)   // not a sequence
    }

    @Test func mapWithAKeyWithoutValue() throws {
        let bytes = [6] + field(hex("08 61 00")) + field(hex("05 01")) + field(hex("08 62 00"))
        let (pairs, error) = withDecoded(bytes) { ad in
            var it = argdata_map_iterator_t()
            var k: OpaquePointer? = nil
            var v: OpaquePointer? = nil
            var out: [([UInt8], [UInt8])] = []
            argdata_map_iterate(ad, &it)
            while argdata_map_get(&it, &k, &v) {
                out.append((cSerialize(k!).bytes, cSerialize(v!).bytes))
                argdata_map_next(&it)
            }
            return (out, it.index)
        }
        #expect(pairs.count == 1 && pairs[0].0 == hex("08 61 00") && pairs[0].1 == hex("05 01"))
        #expect(error == iteratorInvalid)
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: bytes) }
    }

    @Test func malformedValuesDeepInsideFailTheWholeDecoding() {
        // A valid outer map holding a sequence with a bad bool.
        let bytes = [6] + field(hex("08 6b 00")) + field([7] + field(hex("02 05")))
        #expect(throws: Errno.invalidArgument) { try Argdata(decoding: bytes) }
        let badString = [7] + field(hex("08 ff 00"))
        #expect(throws: Errno.illegalByteSequence) { try Argdata(decoding: badString) }
    }

    @Test func iteratingSomethingThatIsNotAContainer() {
        withDecoded(hex("05 01")) { ad in
            var mi = argdata_map_iterator_t()
            var si = argdata_seq_iterator_t()
            var k: OpaquePointer? = nil
            var v: OpaquePointer? = nil
            argdata_map_iterate(ad, &mi)
            argdata_seq_iterate(ad, &si)
            #expect(mi.index == iteratorInvalid && si.index == iteratorInvalid)
            #expect(!argdata_map_get(&mi, &k, &v) && !argdata_seq_get(&si, &k))
            argdata_map_next(&mi)   // harmless: ended, as the reference has it
            argdata_seq_next(&si)
            #expect(mi.index == iteratorEnd && si.index == iteratorEnd)
            #expect(!argdata_map_get(&mi, &k, &v) && !argdata_seq_get(&si, &k))
        }
    }

    @Test func randomBytesNeverCrashAndReencodeTheSame() throws {
        // Not a fuzzer: mutated valid buffers, to see that every entry
        // point survives whatever the bytes are, and that Swift decoding
        // agrees with the C library's reading of them.
        var rng = SplitMix64(seed: 0xbad_da7a)
        let trees: [Argdata] = [
            ["a": [1, 2.5, "x"], "b": .fd(.standardInput), "c": .binary([1, 2])],
            [[[[]]], [:], .timestamp(.init(seconds: 5)), -1, true],
        ]
        let seeds = trees.map { $0.serialize().bytes }
        for round in 0..<3000 {
            var b = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !b.isEmpty: b.remove(at: Int.random(in: 0..<b.count, using: &rng))
                default: b.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...b.count, using: &rng))
                }
            }
            withDecoded(b, table: [0, 1, 2]) { ad in
                let out = cSerialize(ad)
                #expect(out.bytes.count == b.count)
                _ = getters(b, table: [0, 1, 2])
                _ = cYAML(ad)
            }
            // Swift's reading is C's: the same tree or the same error.
            let fds = [0, 1, 2].map(FileDescriptor.init(rawValue:))
            let swift = Result { () throws(Errno) in try Argdata(decoding: b, fds: fds) }
            #expect(swift == decodeThroughC(b, fds: fds), "\(b)")
            if case .success(let v) = swift {
                // Whatever decodes re-encodes to something that decodes the same.
                let again = v.serialize()
                #expect(try Argdata(decoding: again.bytes, fds: again.fds) == v)
            }
        }
    }
}
