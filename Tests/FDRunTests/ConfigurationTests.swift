// The YAML-to-plan conversion, in process: the core schema, tags,
// descriptor sources, every error with its place, and hostile input.
import FDRemap
import FDRunConfig
import SystemPackage
import Testing
import FDRemapTestSupport

func plan(_ text: String, limits: Limits = Limits()) throws(ConfigurationError) -> Plan {
    try Plan(parsing: Array(text.utf8), file: "cfg.yaml", limits: limits)
}

/// The error that `text` gives, as fdrun prints it.
func failure(_ text: String, limits: Limits = Limits()) -> String {
    do {
        _ = try plan(text, limits: limits)
        return "no error"
    } catch {
        return error.description
    }
}

func fd(_ i: Int32) -> Argdata { .fd(FileDescriptor(rawValue: i)) }

@Suite struct CoreSchemaTests {
    static let table: [(String, Argdata)] = [
        ("~", .null), ("null", .null), ("Null", .null), ("NULL", .null), ("", .null),
        ("a:", ["a": .null]),
        ("true", true), ("True", true), ("TRUE", true),
        ("false", false), ("False", false), ("FALSE", false),
        ("yes", "yes"), ("on", "on"), ("tRUE", "tRUE"), ("nULL", "nULL"),
        ("0", 0), ("-12", -12), ("+7", 7), ("012", 12), ("0o17", 15), ("0x1F", 31),
        ("0xff", 255), ("-0x1f", "-0x1f"), ("0b101", "0b101"), ("1_000", "1_000"),
        ("0x", "0x"), ("0o8", "0o8"), ("+", "+"),
        ("18446744073709551615", .int(Int128(UInt64.max))),
        ("0xffffffffffffffff", .int(Int128(UInt64.max))),
        ("-9223372036854775808", .int(Int128(Int64.min))),
        ("1.5", 1.5), ("-1.5", -1.5), (".5", 0.5), ("1.", 1.0), ("1e3", 1000.0),
        ("-1E-3", -0.001), ("+2.5e+2", 250.0), ("-0.0", .float(-0.0)),
        (".inf", .float(.infinity)), ("+.Inf", .float(.infinity)), ("-.INF", .float(-.infinity)),
        (".nan", .float(.nan)), (".NaN", .float(.nan)), (".NAN", .float(.nan)),
        ("nan", "nan"), ("inf", "inf"), (".", "."), ("1e", "1e"), ("e3", "e3"), ("1.2.3", "1.2.3"),
        ("2026-01-01", "2026-01-01"), ("12:30", "12:30"), ("hello world", "hello world"),
        ("'12'", "12"), ("\"true\"", "true"), ("\"a\\0b\"", "a\u{0}b"), ("|\n  x\n", "x\n"),
        ("! 12", "12"), ("!!str 12", "12"), ("!!int \"12\"", 12), ("!!int -0x10", -16),
        ("!!float 3", 3.0), ("!!float '-0'", .float(-0.0)), ("!!bool 'true'", true),
        ("!!null ''", .null), ("!!binary aGk=", .binary(Array("hi".utf8))),
        ("!!binary \"aGVs\\nbG8=\"", .binary(Array("hello".utf8))), ("!!binary ''", .binary([])),
        ("!!timestamp 1970-01-01", .timestamp(.init(nanosecondsSince1970: 0))),
        ("!!timestamp 2001-12-14t21:59:43.10-05:00",
         .timestamp(.init(seconds: 1_008_385_183, nanoseconds: 100_000_000))),
        ("!!timestamp '2001-12-14 21:59:43.10 -5'",
         .timestamp(.init(seconds: 1_008_385_183, nanoseconds: 100_000_000))),
        ("!!timestamp -0001-12-31T23:59:59.000000001Z",
         .timestamp(.init(nanosecondsSince1970: -62_167_219_201_000_000_000 + 1))),
        ("[1, a, ~]", [1, "a", nil]), ("{b: 2, a: 1}", ["b": 2, "a": 1]),
        ("{a: 1, a: 2}", .map([(key: "a", value: 1), (key: "a", value: 2)])),
        ("!!seq [1]", [1]), ("!!map {1: 2}", [1: 2]), ("? [1]\n: x", [[1]: "x"]),
    ]

    @Test(arguments: table)
    func scalar(_ text: String, _ expected: Argdata) throws {
        let p = try plan(text)
        #expect(p.argdata == expected, "\(text)")
        #expect(p.sources.isEmpty)
    }

    @Test func errors() {
        let cases: [(String, String)] = [
            // Beyond what argdata_get_int_s/_u read (a 9-byte encoding).
            ("18446744073709551616",
             "cfg.yaml:1:1: the integer \"18446744073709551616\" is outside -2^63 ... 2^64 - 1, the range a program's argdata_get_int reads"),
            ("-9223372036854775809",
             "cfg.yaml:1:1: the integer \"-9223372036854775809\" is outside -2^63 ... 2^64 - 1, the range a program's argdata_get_int reads"),
            ("x: !!int 170141183460469231731687303715884105728",
             "cfg.yaml:1:4: the integer \"170141183460469231731687303715884105728\" is outside -2^63 ... 2^64 - 1, the range a program's argdata_get_int reads"),
            ("x: !!int abc", "cfg.yaml:1:4: \"abc\" is not an integer (!!int)"),
            ("!!bool yes", "cfg.yaml:1:1: \"yes\" is not true or false (!!bool)"),
            ("!!null 0", "cfg.yaml:1:1: \"0\" is not null (!!null)"),
            ("!!float x", "cfg.yaml:1:1: \"x\" is not a number (!!float)"),
            ("!!binary a*==", "cfg.yaml:1:1: \"a*==\" is not base64 (!!binary)"),
            ("!!binary abc", "cfg.yaml:1:1: \"abc\" is not base64 (!!binary)"),
            ("!!timestamp 2001-02-29", "cfg.yaml:1:1: \"2001-02-29\": no such date"),
            ("!!timestamp 2001-01-01T24:00:00", "cfg.yaml:1:1: \"2001-01-01T24:00:00\": no such time of day"),
            ("!!seq x", "cfg.yaml:1:1: !!seq does not take a scalar"),
            ("!!map [1]", "cfg.yaml:1:1: !!map does not take a sequence"),
            ("!!set {a: 1}", "cfg.yaml:1:1: unknown tag !!set"),
        ]
        for (text, message) in cases {
            #expect(failure(text).hasPrefix(message), "\(text)")
        }
    }
}

@Suite struct TagTests {
    static let body = """
        - !fd stdout
        - !file {path: /etc/hostname}
        - !fd 1
        - !executable
        - &s !socket {connect: "[::1]:80", type: dgram}
        - *s
        - !fd stdin
        - !executable
        """

    /// Sources in order of first appearance, the same `!fd` and every
    /// `!executable` once, an alias the same source: the program's
    /// descriptor i is sources[i], as serialize() numbers them.
    @Test func sourcesAndNumbering() throws {
        let p = try plan(Self.body)
        #expect(p.sources.map(\.kind) == [
            .inherited(1), .file(path: "/etc/hostname", mode: .read), .executable,
            .socket(SocketSpec(.connect, .inet6([UInt8](repeating: 0, count: 15) + [1], port: 80),
                               kind: .dgram)),
            .inherited(0),
        ])
        #expect(p.argdata == [fd(0), fd(1), fd(0), fd(2), fd(3), fd(3), fd(4), fd(2)])
        #expect(p.argdata.serialize().fds.map(\.rawValue) == [0, 1, 2, 3, 4])
        #expect(p.sources.map(\.location.line) == [1, 2, 4, 5, 7])
        #expect(p.sources[1].location.column == 3)
    }

    /// cloudabi-run's configurations work with the %TAG directive, without
    /// it, and with verbatim tags.
    @Test func withAndWithoutDirective() throws {
        let without = try plan(Self.body)
        let with = try plan("%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n" + Self.body)
        #expect(with.argdata == without.argdata)
        #expect(with.sources.map(\.kind) == without.sources.map(\.kind))
        let verbatim = try plan("[!<tag:nuxi.nl,2015:cloudabi/fd> stderr]")
        #expect(verbatim.sources.map(\.kind) == [.inherited(2)])
    }

    @Test func fileModesAndSockets() throws {
        let p = try plan("""
            - !file {path: a, mode: write}
            - !file {mode: append, path: b}
            - !file {path: c, mode: readwrite}
            - !socket {bind: /tmp/s, type: seqpacket, domain: unix}
            - !socket {bind: "0.0.0.0:0", domain: inet}
            - !socket {connect: "127.0.0.1:65535", type: stream}
            """)
        #expect(p.sources.map(\.kind) == [
            .file(path: "a", mode: .write), .file(path: "b", mode: .append),
            .file(path: "c", mode: .readwrite),
            .socket(SocketSpec(.bind, .unix("/tmp/s"), kind: .seqpacket)),
            .socket(SocketSpec(.bind, .inet([0, 0, 0, 0], port: 0))),
            .socket(SocketSpec(.connect, .inet([127, 0, 0, 1], port: 65535))),
        ])
    }

    @Test(arguments: [
        ("/run/x.sock", "/run/x.sock"), ("127.0.0.1:80", "127.0.0.1:80"),
        ("[::1]:8080", "[::1]:8080"), ("[2001:db8:0:0:1:0:0:1]:1", "[2001:db8::1:0:0:1]:1"),
        ("[0:0:0:0:0:0:0:0]:0", "[::]:0"), ("[fe80:0:0:0:0:0:0:2]:9", "[fe80::2]:9"),
    ])
    func addresses(_ text: String, _ shown: String) throws {
        let p = try plan("!socket {bind: \"\(text)\"}")
        guard case .socket(let s) = p.sources.first?.kind else {
            Issue.record("no socket")
            return
        }
        #expect(s.address.description == shown)
    }
}

@Suite struct ErrorTests {
    /// Each error names the file, line and column, the problem and the
    /// offending value.
    static let cases: [(String, String)] = [
        ("a: !fle x", "cfg.yaml:1:4: unknown tag !fle"),
        ("a: !<tag:example.com,2000:x> 1", "cfg.yaml:1:4: unknown tag !<tag:example.com,2000:x>"),
        ("a: !fd 12x", "cfg.yaml:1:4: !fd takes stdin, stdout, stderr or a descriptor number (0 to 2147483647), not \"12x\""),
        ("a: !fd -1", "cfg.yaml:1:4: !fd takes stdin, stdout, stderr or a descriptor number"),
        ("a: !fd 99999999999", "cfg.yaml:1:4: !fd takes stdin"),
        ("a: !fd {x: 1}", "cfg.yaml:1:4: !fd does not take a map (!fd stdin|stdout|stderr|N)"),
        ("a: !executable x", "cfg.yaml:1:4: !executable takes no value, not \"x\""),
        ("a: !file /etc/hosts", "cfg.yaml:1:4: !file does not take a scalar (!file {path: P})"),
        ("a: !file {}", "cfg.yaml:1:4: !file needs a path (!file {path: P})"),
        ("a: !file {path: x, mdoe: read}", "cfg.yaml:1:20: !file has no key \"mdoe\" (it takes path, mode)"),
        ("a: !file {path: x, mode: exec}", "cfg.yaml:1:20: !file mode is read, write, append or readwrite, not \"exec\""),
        ("a: !file {path: 12}", "cfg.yaml:1:11: !file path must be a string, not the int 12 (quote it)"),
        ("a: !file {path: x, path: y}", "cfg.yaml:1:20: !file has two \"path\" keys"),
        ("a: !file {1: x}", "cfg.yaml:1:11: !file keys are strings, not the int 1"),
        ("a: !file {path: \"\"}", "cfg.yaml:1:11: !file path \"\" is not a path"),
        ("a: !socket {bind: /a, connect: /b}", "cfg.yaml:1:4: !socket needs one of bind and connect"),
        ("a: !socket {type: dgram}", "cfg.yaml:1:4: !socket needs one of bind and connect"),
        ("a: !socket {bind: \":80\"}", "cfg.yaml:1:13: \":80\" is not a socket address: /path, HOST:PORT or [IPV6]:PORT (HOST and PORT may be names)"),
        ("a: !socket {bind: \"-x:80\"}", "cfg.yaml:1:13: \"-x:80\" is not a socket address"),
        ("a: !socket {bind: \"a b:80\"}", "cfg.yaml:1:13: \"a b:80\" is not a socket address"),
        ("a: !socket {bind: \"localhost:\"}", "cfg.yaml:1:13: \"localhost:\" is not a socket address"),
        ("a: !socket {bind: \"[::1]:-1\"}", "cfg.yaml:1:13: \"[::1]:-1\" is not a socket address"),
        ("a: !socket {bind: \"localhost:80\", domain: unix}", "cfg.yaml:1:35: !socket domain \"unix\" does not match the address localhost:80 (inet or inet6)"),
        ("a: !socket {bind: \"1.2.3.4\"}", "cfg.yaml:1:13: \"1.2.3.4\" is not a socket address"),
        ("a: !socket {bind: \"1.2.3.4:65536\"}", "cfg.yaml:1:13: \"1.2.3.4:65536\" is not a socket address"),
        ("a: !socket {bind: \"1.2.3.4:-1\"}", "cfg.yaml:1:13: \"1.2.3.4:-1\" is not a socket address"),
        ("a: !socket {bind: \"::1:80\"}", "cfg.yaml:1:13: \"::1:80\" is not a socket address"),
        ("a: !socket {bind: \"[fe80::1%eth0]:80\"}", "cfg.yaml:1:13: \"[fe80::1%eth0]:80\" is not a socket address"),
        ("a: !socket {bind: tmp/x}", "cfg.yaml:1:13: \"tmp/x\" is not a socket address"),
        ("a: !socket {bind: /" + String(repeating: "x", count: 107) + "}",
         "cfg.yaml:1:13: the Unix socket path \"/" + String(repeating: "x", count: 107) + "\" is longer than 107 bytes"),
        ("a: !socket {bind: /s, type: raw}", "cfg.yaml:1:23: !socket type is stream, dgram or seqpacket, not \"raw\""),
        ("a: !socket {bind: /s, domain: inet}", "cfg.yaml:1:23: !socket domain \"inet\" does not match the address /s (unix)"),
        ("a: !socket {bind: /s, port: 1}", "cfg.yaml:1:23: !socket has no key \"port\""),
        ("a: [1, 2\nb: 3", "cfg.yaml:2:2: did not find expected ',' or ']' while parsing a flow sequence"),
        ("a: b: c", "cfg.yaml:1:5: mapping values are not allowed in this context"),
        ("\ta: 1", "cfg.yaml:1:1: found character that cannot start any token while scanning for the next token"),
        ("a: 1\n---\nb: 2", "cfg.yaml:2:1: a second YAML document; a configuration is one document"),
        ("a: *nope", "cfg.yaml:1:4: alias *nope names no anchor defined before it"),
        ("a: 1\nb: \u{1}", "cfg.yaml:2:4: control characters are not allowed"),
    ]

    @Test(arguments: cases)
    func message(_ text: String, _ expected: String) {
        let got = failure(text)
        #expect(got.hasPrefix(expected), "\(text)\n got: \(got)\nwant: \(expected)")
    }

    /// Bytes that are not UTF-8: the line and column of the first bad one.
    @Test func invalidUTF8() {
        let bytes = Array("a: 1\nbc: d".utf8) + [0xff] + Array("\n".utf8)
        do {
            _ = try Plan(parsing: bytes, file: "cfg.yaml")
            Issue.record("no error")
        } catch {
            #expect(error.description.hasPrefix("cfg.yaml:2:6: invalid leading UTF-8 octet (byte 0xff)"),
                    "\(error)")
        }
    }
}

@Suite struct HostileInputTests {
    /// Levels of ten aliases each: line 5 stands for 10^5 values, line 6
    /// for 10^6, as a value or as a key (which Yams's composer would hash
    /// in full), and each further level would multiply that by ten.
    /// Refused at the alias that passes the limit, in time linear in the
    /// text, however many values it would have expanded to.
    @Test(arguments: [false, true])
    func aliasBomb(asKey: Bool) {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        let names = "abcde".map(String.init)
        for i in 1..<names.count {
            text += "\(names[i]): &\(names[i]) [" +
                Array(repeating: "*\(names[i - 1])", count: 10).joined(separator: ", ") + "]\n"
        }
        let bomb = "[" + Array(repeating: "*e", count: 10).joined(separator: ", ") + "]"
        text += asKey ? "? \(bomb)\n: 1\n" : "bomb: \(bomb)\n"
        let got = failure(text)
        let column = asKey ? 32 : 36   // the ninth *e
        #expect(got == "cfg.yaml:6:\(column): more than 1000000 values (an alias counts as all it stands for, at each use)")
    }

    /// Exactly the limit is fine; one more is not.
    @Test func nodeLimitIsExact() throws {
        var limits = Limits()
        limits.maximumNodes = 11
        _ = try plan("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", limits: limits)
        #expect(failure("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]", limits: limits)
            == "cfg.yaml:1:33: more than 11 values (an alias counts as all it stands for, at each use)")
    }

    /// Written nesting stops in libyaml; nesting built by aliases is
    /// counted here, to the depth the argdata decoder accepts.
    @Test func deepNesting() throws {
        let n = 100_000
        let deep = String(repeating: "[", count: n) + String(repeating: "]", count: n)
        #expect(failure(deep).contains("nested more than 1000 deep"))
        let blockDeep = (0..<1500).map { String(repeating: " ", count: $0) + "- " }.joined(separator: "\n") + "x"
        #expect(failure(blockDeep).contains("nested more than 1000 deep"))

        let ok = String(repeating: "[", count: 900) + String(repeating: "]", count: 900)
        _ = try plan(ok)
        // 600 + 600 through an alias: deeper than 1000.
        let half = String(repeating: "[", count: 599) + "1" + String(repeating: "]", count: 599)
        let viaAlias = "- &a " + half + "\n- " + String(repeating: "[", count: 600) + "*a"
            + String(repeating: "]", count: 600)
        let got = failure(viaAlias)
        #expect(got.hasPrefix("cfg.yaml:2:603: maps and sequences nested more than 1000 deep"), "\(got)")
    }

    @Test func hugeScalarAndInput() {
        let big = String(repeating: "x", count: 131_072)
        #expect(failure("a: " + big) == "cfg.yaml:1:4: a scalar of 131072 bytes, more than the 131071 a program argument can carry")
        #expect(failure("a: \"" + big + "\"").hasPrefix("cfg.yaml:1:4: a scalar of 131072 bytes"))
        let input = String(repeating: "# comment\n", count: 900_000)
        #expect(failure(input) == "cfg.yaml:1:1: the configuration is 9000000 bytes, more than the 8388608 fdrun reads")
    }
}

/// What argdata_print_yaml prints reads back as the same tree: random
/// trees (seeded) of every type but descriptors.
@Suite struct RoundTripTests {
    struct Generator {
        var rng: SplitMix64
        mutating func next() -> UInt64 { rng.next() }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

        mutating func string() -> String {
            let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\u{0}",
                                          "\u{1}", "\u{7f}", "é", "\u{2028}", "\u{feff}", "😀", ":",
                                          "#", "-", "!", "&", "*", "%", "'"]
            var s = String.UnicodeScalarView()
            for _ in 0..<below(12) { s.append(pool[below(pool.count)]) }
            return String(s)
        }

        mutating func value(depth: Int) -> Argdata {
            switch below(depth > 3 ? 8 : 10) {
            case 0: return .null
            case 1: return .bool(below(2) == 0)
            // What the printer keeps, as the reference's does: integers
            // within 64 bits, signed or not (beyond, it prints null), and
            // floats but -0 (printed "0").
            case 2:
                return below(2) == 0 ? .int(Int128(Int64(bitPattern: next()) >> below(64)))
                    : .int(Int128(next() >> below(64)))
            case 3:
                let special: [Double] = [0, .infinity, -.infinity, .nan, Double.leastNonzeroMagnitude, .greatestFiniteMagnitude]
                return .float(below(3) == 0 ? special[below(special.count)]
                              : Double(bitPattern: next() & 0x7fef_ffff_ffff_ffff) * (below(2) == 0 ? 1 : -1))
            case 4: return .str(string())
            case 5: return .binary((0..<below(9)).map { _ in UInt8(truncatingIfNeeded: next()) })
            case 6: return .timestamp(.init(nanosecondsSince1970:
                Int128(truncatingIfNeeded: Int64(bitPattern: next())) << below(30)))
            case 7: return .str(["true", "12", "~", "0x1f", ".nan", "", "null", "-", "1e3"][below(9)])
            case 8: return .seq((0..<below(5)).map { _ in value(depth: depth + 1) })
            default:
                return .map((0..<below(4)).map { _ in (value(depth: depth + 1), value(depth: depth + 1)) })
            }
        }
    }

    @Test func printedTreesReadBack() throws {
        var g = Generator(rng: SplitMix64(seed: 20261129))
        for i in 0..<3000 {
            let tree = g.value(depth: 0)
            let text = tree.yaml()
            let back = try plan(text).argdata
            #expect(back == tree, "tree \(i):\n\(text)")
            if back != tree { break }
        }
    }
}
