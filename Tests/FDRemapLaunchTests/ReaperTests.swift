// The child's pidfd and the background reaper: a child nobody waits for
// runs to its end and does not stay a zombie.
import CFDRemapHost
import Glibc
import Testing

/// program_spawn_raw() of the probe with a pidfd; (pid, pidfd).
func spawnWithPidfd(_ command: [String], _ fds: [Int32]) -> (pid_t, Int32) {
    let probe = open(Probe.path, O_RDONLY | O_CLOEXEC)
    defer { close(probe) }
    var pid: pid_t = -1, pidfd: Int32 = -2
    let d = data(command)
    let error = withUnsafeMutablePointer(to: &pidfd) { pidfdp in
        var attr = program_attr(pa_name: nil, pa_envp: nil, pa_flags: 0,
                                pa_closedby: nil, pa_pidfd: pidfdp,
            pa_sigmask: nil, pa_argv: nil, pa_cwd: nil, pa_cwdfd: 0, pa_pgroup: 0)
        return d.withUnsafeBytes { b in
            fds.withUnsafeBufferPointer { f in
                program_spawn_raw(probe, b.baseAddress, b.count, f.baseAddress,
                                  f.count, &attr, &pid)
            }
        }
    }
    #expect(error == 0)
    return (pid, pidfd)
}

/// Whether process `pid` is gone, zombie included (waits up to 10 s).
func isGone(_ pid: pid_t) -> Bool {
    for _ in 0..<2000 {
        if access("/proc/\(pid)", F_OK) != 0 { return true }
        usleep(5000)
    }
    return false
}

@Suite struct ReaperTests {
    @Test func theChildComesWithACloseOnExecPidfd() {
        let o = Opened()
        let m = o.memfd()
        let (pid, pidfd) = spawnWithPidfd(["sleep", "0", "0"], [m])
        #expect(pidfd >= 0)
        #expect(fcntl(pidfd, F_GETFD) & FD_CLOEXEC != 0)
        // The pidfd becomes readable when the child exits.
        var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&p, 1, 10_000) == 1)
        #expect(exitCode(reap(pid)) == 0)
        close(pidfd)
    }

    @Test(arguments: [true, false])
    func aDroppedChildRunsToItsEndAndIsReaped(_ withPidfd: Bool) {
        let o = Opened()
        let m = o.memfd()
        let (pid, pidfd) = spawnWithPidfd(["sleep", "200", "0"], [m])
        if !withPidfd { close(pidfd) }
        #expect(program_reap(pid, withPidfd ? pidfd : -1) == 0)
        #expect(isGone(pid), "the child was not reaped")
        #expect(Probe.read(m) == "slept\n", "the child did not run to its end")
    }

    @Test func manyDroppedChildrenLeaveNoZombie() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            var pids: [pid_t] = []
            for i in 0..<20 {
                let (pid, pidfd) = spawnWithPidfd(["sleep", "\(i * 10)", "0"], [m])
                #expect(program_reap(pid, pidfd) == 0)
                pids.append(pid)
            }
            for pid in pids { #expect(isGone(pid)) }
            #expect(hasNoChildren())
            #expect(Probe.read(m) == String(repeating: "slept\n", count: 20))
        }
    }
}
