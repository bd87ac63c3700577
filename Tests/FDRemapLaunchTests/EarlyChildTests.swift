// Lists of 3,072 descriptors and more that a fresh table cannot take
// (longer than 32,768, a kernel without CLOSE_RANGE_UNSHARE, or
// PROGRAM_TEST_EARLY, which these tests use): the child starts before the
// model has decided and shuffles a copy of the table beside it, on
// another CPU (host_plan_early in host_program.c). The same tables and
// the same errors as a launch in turn (PROGRAM_TEST_SERIAL), nothing
// left behind when the model says no, and no child left waiting when its
// caller's process goes away.
import CFDRemapHost
import CFDRemapTestHooks
import FDRemapTestSupport
import Glibc
import Testing

/// `count` descriptors of this process, copies of `files` distinct
/// files at whatever numbers the table gives them (many below `count`,
/// so that the shuffle has cycles and identity entries), in a seeded
/// random order that repeats some.
func longList(_ o: Opened, count: Int, files: Int, seed: UInt64) -> [Int32] {
    var g = SplitMix64(seed: seed)
    let originals = (0..<files).map { _ in o.memfd() }
    var fds = (0..<count).map { i in
        o.dup(originals[i % files], atLeast: 3)
    }
    fds.shuffle(using: &g)
    for _ in 0..<count / 10 {
        fds[Int.random(in: 0..<count, using: &g)] = fds[Int.random(in: 0..<count, using: &g)]
    }
    return fds
}

/// A list this long starts its child early (HOST_EARLY_MIN is 3,072)
/// with PROGRAM_TEST_EARLY.
let earlyLength = 4000

/// Early even on a busy machine (the tests run in parallel), which would
/// otherwise launch in turn.
let early = UInt32(PROGRAM_TEST_EARLY)

/// The early path's error cases; each in a process of its own.
enum EarlyErrorCase: String, CaseIterable, Codable, Sendable {
    /// An entry that is not open: the model's EBADF (the child, which
    /// found it too, is reaped).
    case ebadfEntry
    /// The executable is not open: the model's EBADF, after the child
    /// has shuffled; it is told to stop.
    case ebadfExecutable
    /// Longer than the highest descriptor allows: the model's E2BIG.
    case e2bigList
    /// The model accepts; execveat() refuses the file.
    case enoexec
    /// The model accepts; the child cannot change directory.
    case enoentWorkingDirectory

    func run() -> (Int32, Int32) {
        raiseNoFile(12000)
        _ = tableSnapshot()
        let o = Opened()
        let m = o.memfd()
        let probe = o.open(Probe.path)
        var fds = [Int32](repeating: m, count: earlyLength)
        fds[earlyLength - 1] = o.dup(m, atLeast: Int32(earlyLength))
        switch self {
        case .ebadfEntry:
            let closed = o.dup(m, atLeast: Int32(earlyLength + 1000))
            o.close(closed)
            fds[1234] = closed
            return (EBADF, cleanly { spawnRaw(probe, [], fds, flags: early).error })
        case .ebadfExecutable:
            let closed = o.dup(m, atLeast: Int32(earlyLength + 1000))
            o.close(closed)
            return (EBADF, cleanly { spawnRaw(closed, [], fds, flags: early).error })
        case .e2bigList:
            let highest = tableSnapshot().keys.max() ?? 0
            let long = [Int32](repeating: m, count: Int(highest) + 2)
            return (E2BIG, cleanly { spawnRaw(probe, [], long, flags: early).error })
        case .enoexec:
            let f = o.tempFile(Array("not a program\n".utf8), mode: 0o755).fd
            return (ENOEXEC, cleanly { spawnRaw(f, [], fds, flags: early).error })
        case .enoentWorkingDirectory:
            return (ENOENT, cleanly {
                var pid: pid_t = -1
                let before = fdr_mem_inuse_thread()
                let error = "/nonexistent/directory".withCString { cwd in
                    var attr = program_attr()
                    attr.pa_cwd = cwd
                    attr.pa_flags = early
                    return program_spawn_raw(probe, nil, 0, fds, fds.count, &attr, &pid)
                }
                #expect(fdr_mem_inuse_thread() == before, "C memory left allocated")
                return error
            })
        }
    }
}

@Suite struct EarlyChildTests {
    /// 4,000 descriptors of 40 files in random order: exactly that table,
    /// whether the child starts early or after the model.
    @Test(arguments: [early, UInt32(PROGRAM_TEST_SERIAL)])
    func aLongRandomListGivesExactlyItsTable(flags: UInt32) {
        raiseNoFile(12000)
        let o = Opened()
        var fds = longList(o, count: earlyLength, files: 40, seed: 7)
        let report = o.memfd()
        fds[1500] = report
        let (_, r) = runProbe(fds, report: report, flags: flags)
        expectTable(r, sources: fds.map { FileID(fd: $0) })
    }

    @Test(arguments: EarlyErrorCase.allCases)
    func failsCleanly(_ c: EarlyErrorCase) async {
        await #expect(processExitsWith: .success) { [c = c as EarlyErrorCase] in
            expectError(c.run(), of: c.rawValue)
        }
    }

    /// Every allocation of an early launch, made to fail in turn: ENOMEM,
    /// nothing left behind (no child, no descriptor, no memory); then it
    /// succeeds with the whole table.
    @Test func everyAllocationFailureIsClean() async {
        await #expect(processExitsWith: .success) {
            raiseNoFile(12000)
            let o = Opened()
            let fds = longList(o, count: earlyLength, files: 10, seed: 3)
            let probe = o.open(Probe.path)
            let (s, failures) = launchFailingEachAllocation {
                spawnRaw(probe, data(["countfds"]), fds, flags: early)
            }
            if s.error == 0 {
                #expect(exitCode(reap(s.pid)) == Int32(fds.count % 256))
            }
            #expect(failures > 5, "a launch allocates several times")
        }
    }

    /// Another thread execs (or the process ends) while an early child
    /// waits for the model: nobody will ever tell it to go on, so it must
    /// give up by itself. The probe races a launching thread against an
    /// exec of `sleep 5` eight times and counts, half a second later,
    /// the children that are still running (a released child has run
    /// /bin/true to its end by then). Without the child's check (its
    /// kcmp of the caller's memory) two of six were stuck when this was
    /// written.
    @Test func aChildWhoseCallerExecsDoesNotWaitForever() {
        let o = Opened()
        let report = o.memfd()
        let (s, r) = runProbe([report], report: report,
                              command: ["execrace", "0", "\(earlyLength)", "8"], checkPid: false)
        guard s.error == 0, let line = r.lines("execrace").first, line.count == 3 else {
            Issue.record("no execrace report: \(r.text)")
            return
        }
        let children = Int(line[1]) ?? -1, stuck = Int(line[2]) ?? -1
        #expect(stuck == 0, "\(stuck) of \(children) children still running")
        #expect(children > 0, "the exec never caught a launch: nothing was tested")
    }
}
