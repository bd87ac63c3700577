import Testing
import Synchronization
import CFDRemapHost
#if canImport(Glibc)
import Glibc
#endif

/// Threads that launch in parallel while other threads open descriptors
/// without O_CLOEXEC: no child ever sees a descriptor it was not given.
@Suite struct ParallelSpawnTests {
    /// Its last checks are about the whole process (no child at all, the
    /// same descriptors as before), so it runs in a process of its own:
    /// other suites' children and descriptors must not count, and its
    /// waitpid(-1) must not reap their children.
    /// With one descriptor the child shuffles a copy of the table; with
    /// 300 it gets a fresh one (the caller's socket pairs then come and
    /// go in the table the openers write too).
    @Test(arguments: [1, 300])
    func parallelSpawnersNeverLeakWhatOthersOpen(count: Int) async {
        await #expect(processExitsWith: .success, "\(count) descriptors") { [count] in
            try ParallelSpawnTests.spawnWhileOthersOpen(count: count)
        }
    }

    static func spawnWhileOthersOpen(count: Int) throws {
        raiseNoFile(12000)
        let o = Opened()
        let probe = o.open(Probe.path)
        let passed = o.open("/dev/null")
        let before = tableSnapshot()
        let openers = Openers(count: 2)
        let spawners = 3, spawnsEach = 120
        let launched = Atomic<Int>(0)
        let leaked = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        let lost = Atomic<Int>(0)
        let env = strdup("FDREMAP_PROBE=countfds")!
        defer { free(env) }
        let envp = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 2)
        defer { envp.deallocate() }
        envp[0] = env
        envp[1] = nil

        final class Job: @unchecked Sendable {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
        }
        var threads: [pthread_t] = []
        for _ in 0..<spawners {
            let job = Job {
                var attr = program_attr(pa_name: nil, pa_envp: UnsafePointer(envp),
                                        pa_flags: 0, pa_closedby: nil, pa_pidfd: nil,
            pa_sigmask: nil, pa_argv: nil, pa_cwd: nil, pa_cwdfd: 0, pa_pgroup: 0)
                var fds = [Int32](repeating: passed, count: count)
                for _ in 0..<spawnsEach {
                    var pid: pid_t = -1
                    let error = program_spawn_raw(probe, nil, 0, &fds, count, &attr, &pid)
                    guard error == 0 else { failed.add(1, ordering: .relaxed); continue }
                    launched.add(1, ordering: .relaxed)
                    // The probe exits with the number of descriptors it
                    // has (modulo 256, an exit status); a child that
                    // cannot be reaped counts as lost.
                    var status: Int32 = 0
                    var got: pid_t
                    repeat { got = waitpid(pid, &status, 0) } while got == -1 && errno == EINTR
                    if got != pid { lost.add(1, ordering: .relaxed) }
                    if exitCode(status) != Int32(count % 256) { leaked.add(1, ordering: .relaxed) }
                }
            }
            var t = pthread_t()
            let rc = pthread_create(&t, nil, { arg in
                Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue().body()
                return nil
            }, Unmanaged.passRetained(job).toOpaque())
            try #require(rc == 0)
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
        openers.stop()

        #expect(failed.load(ordering: .relaxed) == 0)
        #expect(launched.load(ordering: .relaxed) == spawners * spawnsEach)
        #expect(leaked.load(ordering: .relaxed) == 0)
        #expect(openers.opened() > 100, "the openers ran meanwhile")
        // Not hasNoChildren(): its waitpid(-1) would reap the children of
        // exit tests running in parallel, which Swift Testing then waits
        // for forever.  Each child here was waited for by its pid.
        #expect(lost.load(ordering: .relaxed) == 0)
        #expect(tableSnapshot() == before, "nothing left open in the caller")
    }
}
