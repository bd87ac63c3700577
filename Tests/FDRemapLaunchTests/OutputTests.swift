// Output: a program's writes to one of its exact descriptors, a pipe,
// collected (bounded) or streamed; several MiB without a deadlock;
// cancellation ends the collection and the program. Streaming reads on
// demand: a stalled consumer blocks the writer on the full pipe and holds
// no more than a chunk; a dropped output closes the read end (SIGPIPE);
// a cancelled wait for the next chunk returns nil at once.
import FDRemap
import Glibc
import Synchronization
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
    static func yes() throws -> (Execution, OutputBytes) {
        try Program.spawnWithOutput(
            .init(.name("yes"), arguments: .strings([], descriptors: stdio), environment: .inherit))
    }

    @Test func aStalledConsumerBlocksTheWriterAndHoldsOneChunk() async throws {
        let (run, output) = try Self.yes()
        try await killedAfter(run) {
            var chunks = output.chunks.makeAsyncIterator()
            var received = 0
            for _ in 0..<4 {
                let chunk = try #require(await chunks.next())
                #expect(!chunk.isEmpty && chunk.count <= 64 << 10)
                received += chunk.count
            }
            // Nobody reads for a second: `yes` fills the pipe and sleeps in
            // write(2) (state S; it never sleeps otherwise), and writes
            // nothing more.
            try await Task.sleep(for: .seconds(1))
            let pid = run.processIdentifier
            let written = try #require(bytesWritten(by: pid))
            try await Task.sleep(for: .milliseconds(300))
            #expect(processState(pid) == "S", "\(processState(pid) ?? "?")")
            #expect(bytesWritten(by: pid) == written)
            // What it wrote is what we were given plus what the pipe holds
            // (at most pipe-max-size, 1 MiB): nothing was read ahead into
            // this process. (Read into an unbounded buffer, a second of
            // `yes` is hundreds of MiB.)
            #expect(written - received <= 1 << 20, "wrote \(written), received \(received)")
            // Reading again lets it go on.
            let next = try #require(await chunks.next())
            #expect(next.count <= 64 << 10)
            received += next.count
            var more = 0
            while more < 1 << 20, let chunk = await chunks.next() { more += chunk.count }
            #expect(more >= 1 << 20)
            let after = try #require(bytesWritten(by: pid))
            #expect(after > written)
        }
        #expect(try await run.wait() == .signaled(SIGKILL, coreDumped: false))
    }

    @Test func aFullPipeNobodyReadsCostsNoCPU() async {
        // In a process of its own, so that its CPU time is this test's.
        // The pipe is readable all the while: its read source must be
        // suspended, not firing for nobody.
        await #expect(processExitsWith: .success) {
            let (run, output) = try OutputTests.yes()
            var chunks = output.chunks.makeAsyncIterator()
            #expect(await chunks.next() != nil)
            try await Task.sleep(for: .milliseconds(200))  // the pipe fills
            let before = cpuTime()
            try await Task.sleep(for: .seconds(1))
            let used = cpuTime() - before
            #expect(used < .milliseconds(200), "\(used) of CPU in a second")
            try run.send(signal: .kill)
            #expect(try await run.wait() == .signaled(SIGKILL, coreDumped: false))
            _ = await chunks.next()
        }
    }

    @Test func aSlowConsumerGetsEveryByteInOrder() async throws {
        // About 590 KB, several pipes full, read with pauses: the writer
        // waits for the reader, and nothing is lost or reordered.
        let (run, output) = try Program.spawnWithOutput(
            .init(.name("seq"), arguments: .strings(["100000"], descriptors: Self.stdio),
                  environment: .inherit))
        var bytes: [UInt8] = []
        var count = 0
        for await chunk in output.chunks {
            #expect(chunk.count <= 64 << 10)
            bytes += chunk
            count += 1
            if count % 8 == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        let expected = (1...100_000).map { "\($0)\n" }.joined()
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
        #expect(try await run.wait() == .exited(0))
    }

    @Test func droppingTheOutputUnreadClosesItsReadEnd() async throws {
        let run: Execution
        do {
            let (r, output) = try Self.yes()
            run = r
            var chunks = output.chunks.makeAsyncIterator()
            #expect(await chunks.next() != nil)  // it is writing
        }   // the sequence and its iterator are gone: the read end closes
        // `yes` ends by itself on its next write: SIGPIPE, or EPIPE and a
        // failure status where SIGPIPE is ignored (the launcher leaves
        // ignored signals ignored). Should it not, it is killed in 30 s.
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            try? run.send(signal: .kill)
        }
        let end = try await run.wait()
        watchdog.cancel()
        switch end {
        case .signaled(SIGPIPE, coreDumped: false): break
        case .exited(let status) where status != 0: break
        default: Issue.record("yes ended by \(end)")
        }
    }

    @Test func cancellingAWaitingNextReturnsNilAtOnce() async throws {
        // `sleep` holds the pipe and writes nothing: next() waits.
        let (run, output) = try Program.spawnWithOutput(
            .init(.name("sleep"), arguments: .strings(["3600"], descriptors: Self.stdio),
                  environment: .inherit))
        try await killedAfter(run) {
            let reading = Task {
                var chunks = output.chunks.makeAsyncIterator()
                let first = await chunks.next()
                let again = await chunks.next()   // ended: nil too
                return (first, again)
            }
            // Should cancellation not wake it, only the child's death
            // ends the output: the watchdog kills it after 120 s and says
            // so. Not a time bound: under ThreadSanitizer the two threads
            // of the cooperative pool can be busy for many seconds (10 s
            // seen in CI) before the woken task runs.
            let fired = Atomic<Bool>(false)
            let watchdog = Task {
                try await Task.sleep(for: .seconds(120))
                fired.store(true, ordering: .relaxed)
                try? run.send(signal: .kill)
            }
            defer { watchdog.cancel() }
            try await Task.sleep(for: .milliseconds(200))
            let clock = ContinuousClock()
            let start = clock.now
            reading.cancel()
            let (first, again) = await reading.value
            let took = clock.now - start
            #expect(first == nil)
            #expect(again == nil)
            let killed = fired.load(ordering: .relaxed)
            #expect(!killed, "next() ended only when the child was killed (\(took))")
            // The byte sequence of the same output has ended too.
            var bytes = output.makeAsyncIterator()
            #expect(await bytes.next() == nil)
        }
        #expect(try await run.wait() == .signaled(SIGKILL, coreDumped: false))
    }

    @Test func readEndsAreClosedAndWaitingTakesNoThreads() async {
        // In a process of its own, so that the table and the thread count
        // are this test's alone.
        await #expect(processExitsWith: .success) {
            let before = tableSnapshot()
            let threadsBefore = threadCount()
            // 64 outputs whose programs write nothing, each with a task
            // waiting for its next chunk: no thread each.
            var runs: [Execution] = []
            var readers: [Task<[UInt8]?, Never>] = []
            for _ in 0..<64 {
                let (run, output) = try Program.spawnWithOutput(
                    .init(.name("sleep"), arguments: .strings(["3600"], descriptors: OutputTests.stdio),
                          environment: .inherit))
                runs.append(run)
                readers.append(Task {
                    var chunks = output.chunks.makeAsyncIterator()
                    return await chunks.next()
                })
            }
            try await Task.sleep(for: .milliseconds(300))
            let threads = threadCount()
            #expect(threads < threadsBefore + 16, "\(threads) threads, \(threadsBefore) before")
            for r in readers { r.cancel() }
            for r in readers { #expect(await r.value == nil) }
            readers = []
            for run in runs {
                try run.send(signal: .kill)
                _ = try await run.wait()
            }
            runs = []
            // One read to its end, one dropped half read.
            let (run, output) = try Program.spawnWithOutput(
                .init(.name("echo"), arguments: .strings(["end"], descriptors: OutputTests.stdio),
                      environment: .inherit))
            var all: [UInt8] = []
            for await byte in output { all.append(byte) }
            #expect(all == Array("end\n".utf8))
            #expect(try await run.wait() == .exited(0))
            // The read ends are closed by their sources' cancel handlers,
            // on Dispatch's queues: give them a moment.
            var after = tableSnapshot()
            for _ in 0..<100 where after != before {
                try await Task.sleep(for: .milliseconds(20))
                after = tableSnapshot()
            }
            #expect(after == before)
            #expect(hasNoChildren())
        }
    }
}

/// Runs `body`, then kills `run` (it is still to be waited for), also
/// when `body` throws: no test leaves its program running.
private func killedAfter(_ run: Execution, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        try? run.send(signal: .kill)
        _ = try? await run.wait()
        throw error
    }
    try run.send(signal: .kill)
}

/// This process's CPU time so far, user and system
/// (`CLOCK_PROCESS_CPUTIME_ID`).
private func cpuTime() -> Duration {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return .seconds(t.tv_sec) + .nanoseconds(t.tv_nsec)
}

/// The contents of a /proc file, or nil when it cannot be read.
private func procFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n == 0 { break }
        bytes += buffer[..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A process's state letter (R, S, D, ...): /proc/PID/stat's third
/// field, after the parenthesized command name.
private func processState(_ pid: pid_t) -> Character? {
    guard let stat = procFile("/proc/\(pid)/stat"),
          let paren = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(after: paren)...].first { $0 != " " }
}

/// The bytes a process has written (its write(2)s that returned):
/// /proc/PID/io's wchar.
private func bytesWritten(by pid: pid_t) -> Int? {
    guard let io = procFile("/proc/\(pid)/io") else { return nil }
    for line in io.split(separator: "\n") where line.hasPrefix("wchar:") {
        return Int(line.dropFirst("wchar:".count).trimmingPrefix(" "))
    }
    return nil
}
