// Program.run(_:teardown:body:): the scoped launch, whose child never
// outlives the call, whether the body returns, throws or is cancelled.
import FDRemap
import Glibc
import Synchronization
import SystemPackage
import Testing

private struct BodyFailed: Error {}

/// `sleep SECONDS` from PATH, with this process's environment.
///
/// The tests that end it give it an hour: a teardown runs in a task,
/// which waits for a thread of the cooperative pool (two here), and the
/// test process's synchronous tests can hold both for minutes (fdrun's
/// tests under AddressSanitizer block theirs while fdrun runs). With 60 s
/// the program once outlived that wait and exited 0 before its SIGTERM.
private func sleeper(_ seconds: Int) -> Program.Configuration {
    Program.Configuration(.name("sleep"), arguments: ["\(seconds)"], environment: .inherit)
}

@Suite struct RunTests {
    @Test func theBodysValueAndTheProgramsEnd() async throws {
        let outcome = try await Program.run(
            .init(.name("true"), arguments: [], environment: .inherit)
        ) { run in run.processIdentifier }
        #expect(outcome.termination == .exited(0))
        #expect(outcome.value > 0)
        #expect(isReaped(outcome.value))
    }

    @Test func theBodyCanEndTheProgram() async throws {
        let outcome = try await Program.run(sleeper(3600)) { run in
            try run.send(signal: .terminate)
        }
        #expect(outcome.termination == .signaled(SIGTERM, coreDumped: false))
    }

    /// A body that throws: the program is torn down (here SIGTERM first)
    /// and reaped, and the body's error comes out.
    @Test func aThrowingBodyTearsTheProgramDown() async throws {
        let seen = Mutex<(Execution, String)?>(nil)
        let start = ContinuousClock.now
        await #expect(throws: BodyFailed.self) {
            _ = try await Program.run(
                sleeper(3600),
                teardown: [.send(signal: .terminate, allowedDurationToNextStep: .seconds(10))]
            ) { run in
                seen.withLock { $0 = (run, processStatus(run.processIdentifier)) }
                throw BodyFailed()
            }
        }
        let (run, status) = try #require(seen.withLock { $0 })
        #expect(isReaped(run.processIdentifier))
        let end = try run.waitBlocking()
        // What the program was when the body threw, should this fail.
        #expect(end == .signaled(SIGTERM, coreDumped: false),
                "\(end) after \(ContinuousClock.now - start); pid \(run.processIdentifier): \(status)")
    }

    /// Cancelled while the body sleeps: the body's CancellationError
    /// comes out, and the program is gone (SIGKILL, no teardown given).
    @Test func cancellingTheCallerEndsTheProgram() async throws {
        let seen = Mutex<Execution?>(nil)
        let task = Task {
            try await Program.run(sleeper(3600)) { run in
                seen.withLock { $0 = run }
                try await Task.sleep(for: .seconds(60))
            }
        }
        while seen.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        let run = try #require(seen.withLock { $0 })
        #expect(isReaped(run.processIdentifier))
        let end = try run.waitBlocking()
        #expect(end == .signaled(SIGKILL, coreDumped: false), "\(end)")
    }

    /// A launch that fails throws before the body runs.
    @Test func aFailedLaunchNeverRunsTheBody() async {
        let ran = Mutex(false)
        await #expect(throws: Errno.noSuchFileOrDirectory) {
            _ = try await Program.run(
                .init(.name("fdremap-no-such-program"), arguments: [], environment: .inherit)
            ) { _ in ran.withLock { $0 = true } }
        }
        #expect(!ran.withLock { $0 })
    }
}

/// The lines of /proc/PID/status that tell what a process is and how it
/// treats signals (for failure messages).
private func processStatus(_ pid: pid_t) -> String {
    guard let f = fopen("/proc/\(pid)/status", "r") else { return "no /proc entry" }
    defer { fclose(f) }
    var out: [String] = []
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, 512, f) != nil {
        let l = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if ["Name:", "State:", "PPid:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:"]
            .contains(where: l.hasPrefix) { out.append(String(l.split(separator: "\n").first ?? "")) }
    }
    return out.joined(separator: ", ")
}
