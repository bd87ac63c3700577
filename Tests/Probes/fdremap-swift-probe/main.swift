// fdremap-swift-probe: a Swift program for the launcher's tests.  It
// reads its tree with `Argdata.current()` and, when the tree is a map
// whose "report" is a descriptor, writes to it
//	argdata HEX		the tree serialised again
//	argfds N...		its descriptors, as this process's numbers
//	fd N DEV INO		each open descriptor's file
// Exit status: 0 after a report, 42 for a null tree, 100 + errno when
// the arguments are not argdata, 3 when there is nothing to report to.
import FDRemap
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        .joined()
}

let tree: Argdata
do {
    tree = try Argdata.current()
} catch {
    exit(100 + error.rawValue)
}
if tree == .null { exit(42) }
guard case .map(let pairs) = tree,
      let report = pairs.first(where: { $0.key == .str("report") }),
      case .fd(let out) = report.value else { exit(3) }
let (bytes, fds) = tree.serialize()
var text = "argdata \(hex(bytes))\nargfds" + fds.map { " \($0.rawValue)" }.joined() + "\n"
if let dir = opendir("/proc/self/fd") {
    while let e = readdir(dir) {
        // d_name is as long as the name, not 256 bytes: read to its NUL.
        let name = String(cString: UnsafeRawPointer(e)
            .advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!)
            .assumingMemoryBound(to: CChar.self))
        guard let fd = Int32(name), fd != dirfd(dir) else { continue }
        var st = stat()
        if fstat(fd, &st) == 0 { text += "fd \(fd) \(st.st_dev) \(st.st_ino)\n" }
    }
    closedir(dir)
}
_ = try? out.writeAll(Array(text.utf8))
exit(0)
