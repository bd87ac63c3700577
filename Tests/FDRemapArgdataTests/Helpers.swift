import CArgdata
import CFDRemapKernel
import FDRemap
import Glibc
import SystemPackage

/// The bytes and descriptor list of a C value, as argdata_serialize gives
/// them (collecting descriptors unless collect is false).
func cSerialize(_ ad: OpaquePointer, collect: Bool = true) -> (bytes: [UInt8], fds: [CInt]) {
    var len = 0
    var nfds = 0
    argdata_serialized_length(ad, &len, &nfds)
    var fds = [CInt](repeating: -2, count: nfds + 1)
    var used = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: len + 1) { buf, count in
        used = fds.withUnsafeMutableBufferPointer {
            argdata_serialize(ad, buf.baseAddress, collect ? $0.baseAddress : nil)
        }
        count = len
    }
    return (bytes, Array(fds[..<used]))
}

/// The number of descriptor values argdata_serialized_length counts.
func cFDCount(_ ad: OpaquePointer) -> Int {
    var len = 0
    var nfds = 0
    argdata_serialized_length(ad, &len, &nfds)
    return nfds
}

/// `convert_fd` for tests: index i maps to table[i] of the FDTable that
/// arg points at, -1 beyond.
let tableConvert: @convention(c) (UnsafeMutableRawPointer?, Int) -> CInt = { arg, index in
    let t = arg!.assumingMemoryBound(to: UnsafeBufferPointer<CInt>.self).pointee
    return index < t.count ? t[index] : -1
}

/// Calls body with a C value over bytes whose descriptor i is table[i]
/// (or with no conversion at all when table is nil).
func withDecoded<R>(
    _ bytes: [UInt8], table: [CInt]? = [], _ body: (OpaquePointer) throws -> R
) rethrows -> R {
    try bytes.withUnsafeBufferPointer { buf in
        try (table ?? []).withUnsafeBufferPointer { t in
            var tbuf = t
            return try withUnsafeMutablePointer(to: &tbuf) { arg in
                let ad = table == nil
                    ? argdata_from_buffer(buf.baseAddress, buf.count, nil, nil)!
                    : argdata_from_buffer(buf.baseAddress, buf.count, tableConvert, arg)!
                defer { argdata_free(ad) }
                return try body(ad)
            }
        }
    }
}

/// C values made in a test, freed together.
final class Nodes {
    private var nodes: [OpaquePointer] = []
    private var arrays: [UnsafeMutablePointer<OpaquePointer?>] = []
    private var strings: [UnsafeMutablePointer<CChar>] = []

    deinit {
        nodes.forEach { argdata_free($0) }
        arrays.forEach { $0.deallocate() }
        strings.forEach { free($0) }
    }

    func keep(_ p: OpaquePointer?) -> OpaquePointer {
        nodes.append(p!)
        return p!
    }

    func int(_ v: Int) -> OpaquePointer { keep(argdata_create_int_s(v)) }

    /// A value over a copy of bytes that lives as long as this.
    func buffer(_ bytes: [UInt8], convert: (@convention(c) (UnsafeMutableRawPointer?, Int) -> CInt)? = nil,
                arg: UnsafeMutableRawPointer? = nil) -> OpaquePointer {
        let c = malloc(max(bytes.count, 1))!.assumingMemoryBound(to: CChar.self)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { _ = memcpy(c, b, bytes.count) } }
        strings.append(c)
        return keep(argdata_from_buffer(c, bytes.count, convert, arg))
    }
    func fd(_ v: CInt) -> OpaquePointer { keep(argdata_create_fd(v)) }
    func str(_ s: String) -> OpaquePointer {
        let c = strdup(s)!
        strings.append(c)
        return keep(argdata_create_str_c(c))
    }

    func array(_ a: [OpaquePointer]) -> UnsafeMutablePointer<OpaquePointer?> {
        let p = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: max(a.count, 1))
        for (i, e) in a.enumerated() { p[i] = e }
        arrays.append(p)
        return p
    }

    func seq(_ a: [OpaquePointer]) -> OpaquePointer {
        keep(argdata_create_seq(array(a), a.count))
    }

    func map(_ pairs: [(OpaquePointer, OpaquePointer)]) -> OpaquePointer {
        keep(argdata_create_map(array(pairs.map(\.0)), array(pairs.map(\.1)), pairs.count))
    }
}

/// Bytes written as hexadecimal pairs, e.g. "07 81 05".
func hex(_ s: String) -> [UInt8] {
    s.split(separator: " ").map { UInt8($0, radix: 16)! }
}

/// A sub-field: the shortest length prefix, then the bytes.
func field(_ bytes: [UInt8]) -> [UInt8] {
    var groups: [UInt8] = []
    var n = bytes.count
    repeat {
        groups.insert(UInt8(n & 0x7f), at: 0)
        n >>= 7
    } while n != 0
    groups[groups.count - 1] |= 0x80
    return groups + bytes
}

/// What argdata_print_yaml prints for ad.
func cYAML(_ ad: OpaquePointer) -> String {
    var text: UnsafeMutablePointer<CChar>? = nil
    var size = 0
    let fp = open_memstream(&text, &size)!
    argdata_print_yaml(ad, fp)
    fclose(fp)
    defer { free(text) }
    return String(decoding: UnsafeRawBufferPointer(start: text, count: size), as: UTF8.self)
}

/// How many descriptors of this process refer to the file at path (as
/// /proc/self/fd shows them). Tests running at the same time use other
/// files, so this counts only what the calling test leaked.
func descriptors(referringTo path: String) -> Int {
    var count = 0
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    while let e = readdir(dir) {
        // d_name is as long as the name, not 256 bytes: read to its NUL.
        let name = String(cString: UnsafeRawPointer(e)
            .advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
            .assumingMemoryBound(to: CChar.self))
        var target = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/" + name, &target, target.count - 1)
        if n > 0 && String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == path {
            count += 1
        }
    }
    return count
}

/// A new empty file of this test's own, open for reading and writing, and
/// its path; the file is removed when the descriptor is closed by the
/// caller (unlinked at once, so the path shows " (deleted)").
func scratchFile(_ tag: String) -> (fd: CInt, path: String) {
    var template = Array("/tmp/argdata-test-\(tag)-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    precondition(fd >= 0)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    unlink(path)
    return (fd, path + " (deleted)")
}

/// argdata.h's iterator end states as Swift sees an iterator's `index`
/// (size_t imports as Int, the macros as UInt).
let iteratorEnd = Int(bitPattern: ARGDATA_ITERATOR_END)
let iteratorInvalid = Int(bitPattern: ARGDATA_ITERATOR_INVALID)
