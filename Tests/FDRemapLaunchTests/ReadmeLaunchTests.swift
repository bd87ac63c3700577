import Testing
import FDRemap
import SystemPackage
import Glibc

/// The README's Swift launch example, with /bin/true as the server and a
/// temporary log, checked.
@Test func theReadmeLaunchExampleWorks() throws {
    let path = "/tmp/fdremap-readme-\(getpid()).log"
    defer { unlink(path) }
    let log = try FileDescriptor.open(FilePath(path), .writeOnly,
                                      options: [.create, .append], permissions: .ownerReadWrite)
    defer { try? log.close() }
    let child = try Program.spawn("/bin/true", argdata: ["log": .fd(log), "port": 8080])
    let termination = try child.wait()
    #expect(termination == .exited(0))
}
