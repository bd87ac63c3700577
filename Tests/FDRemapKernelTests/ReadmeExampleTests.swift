import Testing
import FDRemap
import SystemPackage

/// The README's Swift example, verbatim but for the prints, with checks.
@Test func theReadmeSwiftExampleWorks() throws {
    let p = try ModelProcess()
    let input = try p.open("input.txt")
    let log = try p.open("app.log", access: .write, closeOnExec: true)
    let program = try p.open("server", imageActivator: { args throws(Errno) in
        #expect(args.argc == 2)
        #expect(args.newTable.openDescriptors == [0, 1])
    })

    let table = try p.remap([log, input])
    #expect(table.table.slots.map { $0?.closeOnExec } == [true, false])

    try p.exec(program, data: Array("hello\0world".utf8), fds: [input, log])
    #expect(p.table.openDescriptors == [0, 1])
    #expect(p.payload(of: 0) as? String == "input.txt")
    #expect(p.payload(of: 1) as? String == "app.log")
}

/// The README's argdata example, with checks.
@Test func theReadmeArgdataExampleWorks() throws {
    let args: Argdata = ["port": 8080, "log": .fd(.standardError), "peers": ["a", "b"]]
    let (bytes, fds) = args.serialize()
    #expect(fds == [.standardError])
    let back = try Argdata(decoding: bytes, fds: fds)
    #expect(back == args)
    #expect(args.yaml().contains("%TAG ! tag:nuxi.nl,2015:cloudabi/"))
    #expect(args.yaml().contains(": !fd \"2\""))
}
