// The Swift face: literals, typed accessors and their errors.
import FDRemap
import SystemPackage
import Testing

@Suite struct SwiftFace {
    @Test func theIssuesExampleLiteral() throws {
        let args: Argdata = ["port": 8080, "log": .fd(FileDescriptor.standardOutput)]
        let (bytes, fds) = args.serialize()
        #expect(fds == [.standardOutput])
        #expect(bytes == [6] + field(hex("08 70 6f 72 74 00")) + field(hex("05 1f 90"))
                + field(hex("08 6c 6f 67 00")) + field(hex("03 00 00 00 00")))
        let back = try Argdata(decoding: bytes, fds: [FileDescriptor(rawValue: 9)])
        #expect(try back.value(forKey: "port")?.integer() == 8080)
        #expect(try back.value(forKey: "log")?.fileDescriptor() == FileDescriptor(rawValue: 9))
        #expect(try back.value(forKey: "missing") == nil)
    }

    @Test func literalsOfEveryKind() {
        let v: Argdata = [nil, true, 1, 2.5, "s", [1], ["k": "v"]]
        #expect(v == .seq([.null, .bool(true), .int(1), .float(2.5), .str("s"),
                           .seq([.int(1)]), .map([(key: .str("k"), value: .str("v"))])]))
    }

    @Test func accessorsGiveTheirTypeOrEINVAL() throws {
        let values: [Argdata] = [
            .null, .binary([1]), .bool(true), .fd(.standardError), .float(1.5), .int(-3),
            .map([]), .seq([]), .str("x"), .timestamp(.init(seconds: 2)),
        ]
        for v in values {
            #expect(v.isNull == (v == .null))
            #expect((try? v.binary()) == (v == .binary([1]) ? [1] : nil))
            #expect((try? v.bool()) == (v == .bool(true) ? true : nil))
            #expect((try? v.fileDescriptor()) == (v == .fd(.standardError) ? .standardError : nil))
            #expect((try? v.float()) == (v == .float(1.5) ? 1.5 : nil))
            #expect((try? v.integer(as: Int8.self)) == (v == .int(-3) ? -3 : nil))
            #expect((try? v.pairs())?.isEmpty == (v == .map([]) ? true : nil))
            #expect((try? v.sequence()) == (v == .seq([]) ? [] : nil))
            #expect((try? v.string()) == (v == .str("x") ? "x" : nil))
            #expect((try? v.timestamp())?.seconds == (v == .timestamp(.init(seconds: 2)) ? 2 : nil))
        }
        #expect(throws: Errno.invalidArgument) { try Argdata.int(1).string() }
        #expect(throws: Errno.invalidArgument) { try Argdata.seq([]).value(forKey: "k") }
        #expect(throws: Errno.outOfRange) { try Argdata.int(-1).integer(as: UInt.self) }
        #expect(throws: Errno.badFileDescriptor) { try Argdata.fd(Argdata.invalidDescriptor).fileDescriptor() }
    }

    @Test func timestampsSplitIntoSecondsAndNanoseconds() {
        let t = Argdata.Timestamp(nanosecondsSince1970: -1)
        #expect(t.seconds == -1 && t.nanoseconds == 999_999_999)
        #expect(Argdata.Timestamp(seconds: 3, nanoseconds: 5).nanosecondsSince1970 == 3_000_000_005)
        #expect(Argdata.Timestamp(seconds: -1) < Argdata.Timestamp(seconds: 0))
    }
}
