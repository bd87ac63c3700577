// argdata_print_yaml: the reference's layout, every scalar type, string
// escaping, and strings read back by a real YAML parser (PyYAML, when
// python3 has it) the same as they were.
import CArgdata
import FDRemap
import Foundation
import SystemPackage
import Testing
import FDRemapTestSupport

private let header = "%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n"

/// The YAML of a value minus the header and the final newline.
private func body(_ v: Argdata) -> String {
    let y = v.yaml()
    #expect(y.hasPrefix(header) && y.hasSuffix("\n"))
    return String(y.dropFirst(header.count).dropLast())
}

/// python3 with PyYAML, if this machine has them.
private let pyYAML: URL? = {
    for path in ["/usr/bin/python3", "/usr/local/bin/python3", "/root/.pyenv/shims/python3"] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["-c", "import yaml"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { continue }
        p.waitUntilExit()
        if p.terminationStatus == 0 { return p.executableURL }
    }
    return nil
}()

@Suite struct YAML {
    @Test func headerAndLayoutAreTheReferences() {
        #expect(Argdata.int(5).yaml() == header + "!!int \"5\"\n")
        let v: Argdata = ["a": [1, [:], []], "b": .fd(FileDescriptor(rawValue: 4))]
        #expect(body(v) == """
            !!map {
              ? !!str "a"
              : !!seq [
                !!int "1",
                !!map {},
                !!seq [],
              ],
              ? !!str "b"
              : !fd "4",
            }
            """)
    }

    static let scalars: [(Argdata, String)] = [
        (Argdata.null, "!!null \"null\""),
        (true, "!!bool \"true\""), (false, "!!bool \"false\""),
        (.fd(FileDescriptor(rawValue: 7)), "!fd \"7\""),
        (.fd(Argdata.invalidDescriptor), "!fd \"invalid\""),
        // The reference's form: shortest digits, exponent without leading
        // zeros, none when it is 0; either zero as "0".
        (0.1, "!!float \"1e-1\""), (-2.5, "!!float \"-2.5\""), (1e300, "!!float \"1e+300\""),
        (123456.0, "!!float \"1.23456e+5\""), (1.5, "!!float \"1.5\""),
        (.float(0.0), "!!float \"0\""), (.float(-0.0), "!!float \"0\""),
        (.float(.nan), "!!float \".nan\""), (.float(.infinity), "!!float \".inf\""),
        (.float(-.infinity), "!!float \"-.inf\""),
        (.float(.leastNonzeroMagnitude), "!!float \"5e-324\""),
        (.int(Int128(Int64.min)), "!!int \"-9223372036854775808\""),
        (.int(Int128(UInt64.max)), "!!int \"18446744073709551615\""),
        // Beyond both 64-bit getters: null, as the reference prints it.
        (.int(Int128(UInt64.max) + 1), "!!null \"null\""),
        (.int(Int128(Int64.min) - 1), "!!null \"null\""),
        (.int(.max), "!!null \"null\""), (.int(.min), "!!null \"null\""),
        (.binary([]), "!!binary \"\""), (.binary(Array("f".utf8)), "!!binary \"Zg==\""),
        (.binary(Array("fo".utf8)), "!!binary \"Zm8=\""), (.binary(Array("foo".utf8)), "!!binary \"Zm9v\""),
        (.binary(Array("foob".utf8)), "!!binary \"Zm9vYg==\""),
        (.timestamp(.init(seconds: 1_700_000_000, nanoseconds: 123)),
         "!!timestamp \"2023-11-14T22:13:20.000000123Z\""),
        (.timestamp(.init(seconds: -1)), "!!timestamp \"1969-12-31T23:59:59.000000000Z\""),
        (.timestamp(.init(seconds: -62_135_596_800)), "!!timestamp \"0001-01-01T00:00:00.000000000Z\""),
        (.timestamp(.init(seconds: 253_402_300_800)), "!!timestamp \"10000-01-01T00:00:00.000000000Z\""),
        (.timestamp(.init(seconds: 951_782_400)), "!!timestamp \"2000-02-29T00:00:00.000000000Z\""),
    ]

    @Test(arguments: scalars)
    func everyScalar(value: Argdata, yaml: String) {
        #expect(body(value) == yaml)
    }

    @Test func hugeIntegersFromABuffer() throws {
        // A 9-byte integer (beyond both 64-bit getters) and a 70-byte one
        // print as null, as in the reference; 2^63 and 2^64 - 1 in 9 bytes
        // fit uintmax_t.
        withDecoded(hex("05 01 00 00 00 00 00 00 00 00")) { ad in
            #expect(cYAML(ad) == header + "!!null \"null\"\n")
        }
        withDecoded([5, 0xff] + [UInt8](repeating: 0, count: 69)) { ad in
            #expect(cYAML(ad) == header + "!!null \"null\"\n")
        }
        withDecoded(hex("05 00 ff ff ff ff ff ff ff ff")) { ad in
            #expect(cYAML(ad) == header + "!!int \"18446744073709551615\"\n")
        }
        // Malformed values print as null, as in the reference.
        withDecoded(hex("02 07")) { ad in #expect(cYAML(ad) == header + "!!null \"null\"\n") }
    }

    @Test func stringsAreQuotedAndEscaped() {
        let cases: [(String, String)] = [
            ("plain", "plain"), ("", ""),
            ("\"quote\" \\back\\", "\\\"quote\\\" \\\\back\\\\"),
            ("\0\u{7}\u{8}\t\n\u{b}\u{c}\r\u{1b}", "\\0\\a\\b\\t\\n\\v\\f\\r\\e"),
            ("\u{1}\u{1f}\u{7f}\u{80}\u{9f}", "\\x01\\x1f\\x7f\\x80\\x9f"),
            ("\u{85}\u{a0}\u{2028}\u{2029}", "\\N\\_\\L\\P"),
            ("\u{feff}\u{fffe}\u{ffff}", "\\ufeff\\ufffe\\uffff"),
            ("caf\u{e9} \u{1F600} \u{10ffff}", "caf\u{e9} \u{1F600} \u{10ffff}"),
            ("# not a comment: - [x] {y} ? &a *b !c |d >e %f @g `h", "# not a comment: - [x] {y} ? &a *b !c |d >e %f @g `h"),
            ("  leading and trailing  ", "  leading and trailing  "),
        ]
        for (s, escaped) in cases {
            #expect(body(.str(s)) == "!!str \"\(escaped)\"")
        }
    }

    @Test(.enabled(if: pyYAML != nil, "needs python3 with PyYAML"))
    func aYAMLParserReadsEveryStringBackTheSame() throws {
        var gen = TreeGenerator(rng: SplitMix64(seed: 2028))
        var strings = TreeGenerator.scalars.map { String($0) }
        for _ in 0..<3000 { strings.append(gen.string()) }
        let document = Argdata.seq(strings.map(Argdata.str)).yaml()
        let script = """
            import sys, yaml
            class L(yaml.SafeLoader): pass
            L.add_multi_constructor('tag:nuxi.nl,2015:cloudabi/', lambda l, s, n: l.construct_scalar(n))
            for s in yaml.load(open(sys.argv[1], encoding='utf-8').read(), Loader=L):
                print(s.encode('utf-8').hex())
            """
        // The document goes through a file of this test's own.
        let file = scratchFile("yaml")
        defer { close(file.fd) }
        let bytes = Array(document.utf8)
        #expect(write(file.fd, bytes, bytes.count) == bytes.count)
        let p = Process()
        p.executableURL = pyYAML
        p.arguments = ["-c", script, "/proc/self/fd/0"]
        p.standardInput = FileHandle(fileDescriptor: dup(file.fd), closeOnDealloc: true)
        let output = Pipe()
        p.standardOutput = output
        _ = lseek(file.fd, 0, SEEK_SET)
        try p.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let expected = strings.map { $0.utf8.map { String(format: "%02x", $0) }.joined() }
        #expect(Array(lines.dropLast()).map(String.init) == expected)
    }
}
