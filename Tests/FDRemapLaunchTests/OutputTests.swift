// Output: a program's writes to one of its exact descriptors, a pipe,
// collected (bounded) or streamed; several MiB without a deadlock;
// cancellation ends the collection and the program.
import FDRemap
import Glibc
import SystemPackage
import Testing

@Suite struct OutputTests {
    static let stdio: [FileDescriptor] = [.standardInput, .standardOutput, .standardError]

    @Test func severalMiBAreCollectedWithoutADeadlock() async throws {
        let size = 8 << 20
        let out = try await Program.output(
            .init(.name("head"), arguments: .strings(["-c", "\(size)", "/dev/zero"],
                                                    descriptors: Self.stdio),
                  environment: .inherit),
            limit: size)
        #expect(out.termination == .exited(0))
        #expect(out.bytes.count == size)
        #expect(!out.truncated)
        #expect(out.bytes.allSatisfy { $0 == 0 })
    }

    @Test func theLimitKeepsTheFirstBytesAndDrainsTheRest() async throws {
        // 4 MiB past a 1000-byte limit: the program must still run to its
        // end (the rest is read and dropped, never left in a full pipe).
        let out = try await Program.output(
            .init(.name("head"), arguments: .strings(["-c", "\(4 << 20)", "/dev/urandom"],
                                                    descriptors: Self.stdio),
                  environment: .inherit),
            limit: 1000)
        #expect(out.termination == .exited(0))
        #expect(out.bytes.count == 1000)
        #expect(out.truncated)
    }

    @Test func thePipeIsOneOfTheExactDescriptors() async throws {
        let o = Opened()
        let devnull = o.open("/dev/null")
        // The probe reports to its descriptor 1, the pipe: descriptors 0
        // and 1 and nothing else.
        let out = try await Program.output(
            .init(.path(FilePath(Probe.path)),
                  arguments: .strings(["report", "1"],
                                      descriptors: [FileDescriptor(rawValue: devnull), .standardOutput])))
        #expect(out.termination == .exited(0))
        let r = ProbeReport(out.string)
        #expect(r.ended, "report: \(out.string)")
        #expect(r.fds.keys.sorted() == [0, 1])
        #expect(r.fds[0]?.id == FileID(fd: devnull))
        #expect(r.fds[1]?.path.hasPrefix("pipe:") == true)
        #expect(r.fds.values.allSatisfy { !$0.cloexec })
    }

    @Test func streamedByteByByte() async throws {
        let (run, output) = try Program.spawnWithOutput(
            .init(.name("sh"), arguments: .strings(["-c", "echo one; sleep 0.1; echo two"],
                                                  descriptors: Self.stdio),
                  environment: .inherit))
        var bytes: [UInt8] = []
        for await byte in output { bytes.append(byte) }
        #expect(String(decoding: bytes, as: UTF8.self) == "one\ntwo\n")
        #expect(try await run.wait() == .exited(0))
    }

    @Test func argdataOrAMissingSlotIsRefused() throws {
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawnWithOutput(.init(.path(FilePath(Probe.path))))
        }
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawnWithOutput(
                .init(.path(FilePath(Probe.path)), arguments: .strings([], descriptors: [])))
        }
    }

    @Test func cancellingTheCollectionTearsTheProgramDown() async throws {
        let o = Opened()
        let m = o.memfd()
        let collecting = Task {
            try await Program.output(
                .init(.path(FilePath(Probe.path)),
                      arguments: .strings(["hold", "1", "ignore"],
                                          descriptors: [FileDescriptor(rawValue: m), .standardOutput])))
        }
        try await Task.sleep(for: .milliseconds(200))
        collecting.cancel()
        let out = try await collecting.value
        #expect(out.termination == .signaled(SIGKILL, coreDumped: false))
        #expect(out.string == "ready\n" || out.string == "")
    }

    @Test func aFailedSpawnClosesThePipe() async {
        await #expect(processExitsWith: .success) {
            let before = tableSnapshot()
            #expect(throws: Errno.noSuchFileOrDirectory) {
                _ = try Program.spawnWithOutput(
                    .init(.path("/nonexistent/program"),
                          arguments: .strings([], descriptors: [.standardInput, .standardOutput])))
            }
            #expect(tableSnapshot() == before)
        }
    }
}
