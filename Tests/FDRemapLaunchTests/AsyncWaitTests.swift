// The async wait (ChildProcess.wait(teardown:), Execution): children
// awaited through the launcher's one epoll thread, cancellation that
// tears the child down and reaps it, and structured concurrency.
import CFDRemapHost
import FDRemap
import Glibc
import SystemPackage
import Testing

/// The probe with `command` in `$FDREMAP_PROBE` and descriptor 0 the
/// file `report` (the command's R is 0).
func spawnProbe(_ command: String, report: Int32) throws -> ChildProcess {
    try Program.spawn(FilePath(Probe.path),
                      argdata: .fd(FileDescriptor(rawValue: report)),
                      options: .init(environment: ["FDREMAP_PROBE=" + command]))
}

/// Waits (up to 10 s) until `fd`'s contents contain `text`, sleeping
/// as a task (a blocked thread of the cooperative pool, which has one a
/// core, could starve the tasks that start and await the children).
func waitForText(_ fd: Int32, _ text: String) async -> Bool {
    for _ in 0..<2000 {
        if Probe.read(fd).contains(text) { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return false
}

/// Whether `pid` is no child of this process to wait for any more (it
/// was reaped): waitid() says ECHILD.
func isReaped(_ pid: pid_t) -> Bool {
    var info = siginfo_t()
    return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1 &&
        errno == ECHILD
}

/// The number of threads of this process.
func threadCount() -> Int {
    guard let dir = opendir("/proc/self/task") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while let e = readdir(dir) {
        if e.pointee.d_name.0 != UInt8(ascii: ".") { n += 1 }
    }
    return n
}

@Suite struct AsyncWaitTests {
    @Test func anAwaitedChildIsReapedWithItsStatus() async throws {
        let o = Opened()
        let m = o.memfd()
        let child = try spawnProbe("sleep 50 0", report: m)
        let pid = child.pid
        #expect(try await child.wait() == .exited(0))
        #expect(Probe.read(m) == "slept\n")
        #expect(isReaped(pid))
    }

    @Test func signalsGoThroughThePidfd() async throws {
        let o = Opened()
        let m = o.memfd()
        let run = try spawnProbe("hold 0 exit", report: m).execution()
        #expect(await waitForText(m, "ready"))
        try run.send(signal: .terminate)
        #expect(try await run.wait() == .exited(3))
        #expect(Probe.read(m) == "ready\nterm\n")
        // Reaped: the pidfd names a process that is gone, never another.
        #expect(throws: Errno.noSuchProcess) { try run.send(signal: .kill) }
        // Every wait gets the one result.
        #expect(try await run.wait() == .exited(3))
        #expect(try run.waitBlocking() == .exited(3))
    }

    @Test func cancellationKillsAtOnceByDefaultAndReaps() async throws {
        let o = Opened()
        let m = o.memfd()
        let run = try spawnProbe("hold 0 ignore", report: m).execution()
        #expect(await waitForText(m, "ready"))
        let waiter = Task { try await run.wait() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!isReaped(run.processIdentifier), "ended before the cancel")
        waiter.cancel()
        #expect(try await waiter.value == .signaled(SIGKILL, coreDumped: false))
        #expect(isReaped(run.processIdentifier), "a zombie remains")
        
    }

    @Test func cancellationRunsTheTeardownStepsInOrder() async throws {
        let o = Opened()
        let m = o.memfd()
        // SIGTERM caught: the child ends itself at the first step.
        let graceful = try spawnProbe("hold 0 exit", report: m).execution()
        #expect(await waitForText(m, "ready"))
        let t1 = Task {
            try await graceful.wait(teardown: [
                .gracefulShutDown(allowedDurationToNextStep: .seconds(10)),
            ])
        }
        t1.cancel()
        #expect(try await t1.value == .exited(3))
        #expect(Probe.read(m) == "ready\nterm\n")
        #expect(isReaped(graceful.processIdentifier))
    }

    @Test func aChildThatIgnoresTheSignalsIsKilledAfterTheGracePeriods() async throws {
        let o = Opened()
        let m = o.memfd()
        let run = try spawnProbe("hold 0 ignore", report: m).execution()
        #expect(await waitForText(m, "ready"))
        let clock = ContinuousClock()
        let start = clock.now
        let waiter = Task {
            try await run.wait(teardown: [
                .send(signal: .terminate, allowedDurationToNextStep: .milliseconds(200)),
                .send(signal: .user2, allowedDurationToNextStep: .milliseconds(100)),
            ])
        }
        waiter.cancel()
        // SIGUSR2 is not ignored: its default action ends the child at
        // the second step, after the first step's grace period.
        #expect(try await waiter.value == .signaled(SIGUSR2, coreDumped: false))
        #expect(clock.now - start >= .milliseconds(200))
        #expect(isReaped(run.processIdentifier))

        let m2 = o.memfd()
        let stubborn = try spawnProbe("hold 0 ignore", report: m2).execution()
        #expect(await waitForText(m2, "ready"))
        let start2 = clock.now
        let waiter2 = Task {
            try await stubborn.wait(teardown: [
                .gracefulShutDown(allowedDurationToNextStep: .milliseconds(300)),
            ])
        }
        waiter2.cancel()
        #expect(try await waiter2.value == .signaled(SIGKILL, coreDumped: false))
        let took = clock.now - start2
        #expect(took >= .milliseconds(300) && took < .seconds(5), "took \(took)")
        #expect(isReaped(stubborn.processIdentifier))
    }

    @Test func aChildThatExitsNeverWaitsOutTheGracePeriod() async throws {
        let o = Opened()
        let m = o.memfd()
        let clock = ContinuousClock()
        let start = clock.now
        let end = try await withThrowingTaskGroup(of: Termination.self) { group in
            group.addTask {
                // A ~Copyable child made and consumed inside the task.
                let child = try spawnProbe("hold 0 exit", report: m)
                return try await child.wait(teardown: [
                    .gracefulShutDown(allowedDurationToNextStep: .seconds(3600)),
                ])
            }
            #expect(await waitForText(m, "ready"))
            group.cancelAll()
            return try await group.next()!
        }
        #expect(end == .exited(3))
        // Well short of the hour's grace period. The bound is loose: the
        // wait resumes on the cooperative pool (two threads here), which
        // the test process's synchronous tests can hold for minutes (in
        // CI's AddressSanitizer step this took 28 s once and 130 s
        // another time, with fdrun's tests blocking theirs while fdrun
        // ran); .exited(3) shows the child ended itself, not killed.
        #expect(clock.now - start < .seconds(1800))
    }

    @Test func teardownWithoutAWait() async throws {
        let o = Opened()
        let m = o.memfd()
        let run = try spawnProbe("hold 0 ignore", report: m).execution()
        #expect(await waitForText(m, "ready"))
        try await run.teardown(using: [
            .send(signal: .hangup, allowedDurationToNextStep: .seconds(10)),
        ])
        // Exited, not yet reaped: still this process's child.
        #expect(!isReaped(run.processIdentifier))
        #expect(try await run.wait() == .signaled(SIGHUP, coreDumped: false))
        #expect(isReaped(run.processIdentifier))
    }

    @Test func asyncLetAwaitsSeveralChildren() async throws {
        let o = Opened()
        let m = o.memfd()
        let a = try spawnProbe("sleep 100 0", report: m).execution()
        let b = try Program.spawn(FilePath(Probe.swiftPath), argdata: .null).execution()
        async let endA = a.wait()
        async let endB = b.wait()
        let (x, y) = try await (endA, endB)
        #expect(x == .exited(0))
        #expect(y == .exited(42))
    }

    @Test func cancellingATaskGroupTearsDownEveryChild() async throws {
        let o = Opened()
        let m = o.memfd()
        var runs: [Execution] = []
        for _ in 0..<5 { runs.append(try spawnProbe("hold 0 ignore", report: m).execution()) }
        #expect(await waitForText(m, String(repeating: "ready\n", count: 5)))
        let all = runs
        let ends = await withTaskGroup(of: Termination?.self) { group in
            for run in all { group.addTask { try? await run.wait() } }
            group.cancelAll()
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(ends.count == 5)
        #expect(ends.allSatisfy { $0 == .signaled(SIGKILL, coreDumped: false) })
        for run in runs { #expect(isReaped(run.processIdentifier)) }
    }

    /// Swift's pool threads block most signals; the child must not
    /// inherit that mask (a SIGTERM of the teardown would never arrive).
    @Test func aChildSpawnedFromATaskStartsWithNoSignalBlocked() async throws {
        let o = Opened()
        let m = o.memfd()
        let child = try spawnProbe("report 0", report: m)
        #expect(try await child.wait() == .exited(0))
        let r = ProbeReport(Probe.read(m))
        #expect(r.ended)
        #expect(r.blocked == 0, "blocked \(String(r.blocked, radix: 16))")
    }

    @Test func watchRefusesWhatItCannotWatch() {
        let fn: @convention(c) (UnsafeMutableRawPointer?) -> Void = { _ in }
        #expect(program_watch(-1, -1, fn, nil) == EINVAL)
        #expect(program_watch(1, 3, nil, nil) == EINVAL)
        let o = Opened()
        let m = o.memfd()
        // A number no other thread will take meanwhile.
        let closed = fcntl(m, F_DUPFD_CLOEXEC, 850)
        close(closed)
        #expect(program_watch(1, closed, fn, nil) == EBADF)
        // A regular file cannot be polled.
        #expect(program_watch(1, m, fn, nil) == EPERM)
    }

    @Test func thousandChildrenAwaitedAtOnceOnOneThread() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(4096)
            let o = Opened()
            let m = o.memfd()
            let count = 1000
            var runs: [Execution] = []
            runs.reserveCapacity(count)
            for _ in 0..<count {
                // Each sleeps until the last has started and is awaited.
                runs.append(try spawnProbe("sleep 3000 0", report: m).execution())
            }
            let all = runs
            let threadsBefore = threadCount()
            let ends = try await withThrowingTaskGroup(of: Termination.self) { group in
                for run in all { group.addTask { try await run.wait() } }
                try await Task.sleep(for: .milliseconds(300))
                // All of them awaited, none waited for by a thread of its own.
                let threads = threadCount()
                #expect(threads < threadsBefore + 16, "\(threads) threads")
                return try await group.reduce(into: [Termination]()) { $0.append($1) }
            }
            #expect(ends.count == count)
            #expect(ends.allSatisfy { $0 == .exited(0) })
            #expect(Probe.read(m) == String(repeating: "slept\n", count: count))
            #expect(hasNoChildren())
        }
    }
}
