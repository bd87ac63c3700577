// libFuzzer's entry for Swift's argdata decoding, linked into the program
// fuzz-argdata-swift (Tests/Fuzz/Targets/FuzzArgdataSwift).
import FDRemap
import FDRemapTestSupport
import SystemPackage

/// Any input decodes in Swift to what the C library reads from it (the
/// same tree, or the same error), and whatever decodes serialises to
/// bytes that decode back to it.  A violation traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArgdataSwift(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let fds = [0, 1, 2].map(FileDescriptor.init(rawValue:))
    let swift = Result { () throws(Errno) in try Argdata(decoding: bytes, fds: fds) }
    precondition(swift == decodeThroughC(bytes, fds: fds),
                 "Swift decoded \(swift), C read \(decodeThroughC(bytes, fds: fds))")
    if case .success(let tree) = swift {
        let (again, list) = tree.serialize()
        precondition((try? Argdata(decoding: again, fds: list)) == tree,
                     "\(tree) does not decode back to itself")
    }
    return 0
}
