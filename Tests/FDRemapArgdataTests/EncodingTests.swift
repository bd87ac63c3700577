import Testing
import FDRemap
import SystemPackage

@Test func placeholder() {
    let a: Argdata = [0, true, "A"]
    #expect(a.serialize().bytes == [0x07, 0x81, 0x05, 0x82, 0x02, 0x01, 0x83, 0x08, 0x41, 0x00])
}
