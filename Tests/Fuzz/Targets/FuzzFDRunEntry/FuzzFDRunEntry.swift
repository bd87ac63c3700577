// libFuzzer's entry for fdrun's YAML-to-argdata path, linked into the
// program fuzz-fdrun (Tests/Fuzz/Targets/FuzzFDRun).
import FDRunConfig
import FDRemap

/// Any input either fails with a located error or gives a plan whose
/// argdata serialises with exactly one descriptor index per source, in
/// order, and decodes back to itself; read as --socket-activation's map,
/// each entry names a source.  A violation traps.  Nothing here resolves
/// a host name: the plan keeps names unresolved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFDRunConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    guard let plan = try? Plan(parsing: bytes, file: "fuzz") else { return 0 }
    let (encoded, fds) = plan.argdata.serialize()
    precondition(fds.map(\.rawValue) == plan.sources.indices.map { CInt($0) },
                 "descriptor list does not match the plan's sources")
    let back = try? Argdata(decoding: encoded, fds: fds)
    precondition(back == plan.argdata, "the argdata does not decode back to itself")
    // --socket-activation's reading of the same plan, pure too (names
    // are never resolved here): every entry names a source.
    if let entries = try? plan.activationEntries() {
        precondition(entries.allSatisfy { plan.sources.indices.contains($0.source) },
                     "an activation entry names no source")
    }
    return 0
}
