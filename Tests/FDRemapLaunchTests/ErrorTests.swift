// Every error class of a launch, each in a process of its own (an exit
// test) so that it can check exactly that the failure left nothing
// behind: the same descriptors (from /proc/self/fd), no child process
// and no zombie, no C memory.  The order of errors is the model's.
import CFDRemapTestHooks
import CFDRemapHost
import CFDRemapKernel
import Glibc
import Testing

/// Linux's O_PATH (not exported by Swift's Glibc module).
let O_PATH_LINUX: Int32 = 0o10000000

/// program_spawn_raw() with raw pointers, for unreadable memory.
func spawnPointers(_ execfd: Int32, _ data: UnsafeRawPointer?, _ datalen: Int,
                   _ fds: UnsafePointer<Int32>?, _ fdslen: Int) -> Int32 {
    var pid: pid_t = -1
    let before = fdr_mem_inuse_thread()
    let error = program_spawn_raw(execfd, data, datalen, fds, fdslen, nil, &pid)
    #expect(fdr_mem_inuse_thread() == before, "C memory left allocated")
    if error == 0 { reap(pid) }
    return error
}

/// A page that cannot be read.
func unreadablePage() -> UnsafeMutableRawPointer {
    mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
}

/// Runs `launch` (expected to fail) and checks that it left this
/// process's table as it was and no child behind.
func cleanly(_ launch: () -> Int32,
             sourceLocation: SourceLocation = #_sourceLocation) -> Int32 {
    let before = tableSnapshot()
    let error = launch()
    let after = tableSnapshot()
    #expect(after == before, "descriptors changed: \(before.filter { after[$0.key] != $0.value }) -> \(after.filter { before[$0.key] != $0.value })", sourceLocation: sourceLocation)
    #expect(hasNoChildren(), "a child was left behind", sourceLocation: sourceLocation)
    return error
}

/// Sets the soft limit of `resource`; the old one is returned.
@discardableResult
func setSoftLimit(_ resource: __rlimit_resource, _ value: rlim_t) -> rlim_t {
    var rl = rlimit()
    getrlimit(Int32(resource.rawValue), &rl)
    let old = rl.rlim_cur
    rl.rlim_cur = min(value, rl.rlim_max)
    setrlimit(Int32(resource.rawValue), &rl)
    return old
}

/// The error classes; each runs in a process of its own.
enum ErrorCase: String, CaseIterable, Codable, Sendable {
    case enoexec, eaccesNotExecutable, eaccesDirectory, enoentInterpreter
    case ebadfNegative, ebadfHole, ebadfExecClosed, ebadfExecWriteOnly
    case ebadfExecReadWrite
    case e2bigData, e2bigFdslen, e2bigFdslenMedium, e2bigFdslenLong, e2bigSizeMax, e2bigHugeArgdata, e2bigString, e2bigEnvironment, e2bigTotal
    case efaultData, efaultFds, efaultNullData
    case emfileOverLimit
    case orderE2bigBeforeEfault, orderEfaultDataBeforeFds
    case orderEfaultBeforeExecfd, orderEbadfFdsBeforeExecfd
    case orderModelBeforeArguments, orderArgumentsBeforeEmfile
    case orderE2bigBeforeAClosedEntry

    /// Sets up, launches (through `cleanly`), and returns (expected, got).
    func run() -> (Int32, Int32) {
        _ = tableSnapshot()     // before any limit is lowered
        let o = Opened()
        let m = o.memfd()
        let probe = o.open(Probe.path)
        let std: [Int32] = [m]
        let elf = Array("\u{7f}ELF".utf8) + [UInt8](repeating: 0, count: 60)
        switch self {
        case .enoexec:
            let f = o.tempFile(Array("not a program\n".utf8), mode: 0o755).fd
            return (ENOEXEC, cleanly { spawnRaw(f, [], std).error })
        case .eaccesNotExecutable:
            let f = o.tempFile(elf, mode: 0o644).fd
            return (EACCES, cleanly { spawnRaw(f, [], std).error })
        case .eaccesDirectory:
            let d = o.open("/tmp", O_RDONLY | O_DIRECTORY)
            return (EACCES, cleanly { spawnRaw(d, [], std).error })
        case .enoentInterpreter:
            let f = o.tempFile(Array("#!/nonexistent/interpreter\n".utf8), mode: 0o755).fd
            return (ENOENT, cleanly { spawnRaw(f, [], std).error })
        case .ebadfNegative:
            return (EBADF, cleanly { spawnRaw(probe, [], [m, -1]).error })
        case .ebadfHole:
            // A closed number below an open one, high enough that no
            // thread's open() takes it meanwhile.
            let a = o.dup(m, atLeast: 500), b = o.dup(m, atLeast: 501)
            o.close(a)
            return (EBADF, cleanly { spawnRaw(probe, [], [b, a, m]).error })
        case .ebadfExecClosed:
            let f = o.dup(m, atLeast: 500)
            o.close(f)
            return (EBADF, cleanly { spawnRaw(f, [], std).error })
        case .ebadfExecWriteOnly:
            let f = o.open("/dev/null", O_WRONLY)
            return (EBADF, cleanly { spawnRaw(f, [], std).error })
        case .ebadfExecReadWrite:
            // The model's (FreeBSD's) rule: no executable open for writing.
            let f = o.tempFile(elf, mode: 0o755, flags: O_RDWR).fd
            return (EBADF, cleanly { spawnRaw(f, [], std).error })
        case .e2bigData:
            let d = [UInt8](repeating: 0x61, count: Int(EXEC_ARG_MAX))
            return (E2BIG, cleanly { spawnRaw(probe, d, std).error })
        case .e2bigFdslen:
            // More descriptors than the highest open one (below 1000 here)
            // allows, and a short list (read before the table).
            let table = tableSnapshot()
            if let high = table.keys.max(), high >= 1023 {
                Issue.record("descriptor \(high) is open: \(table.filter { $0.key >= 1000 })")
            }
            let fds = [Int32](repeating: m, count: 1024)
            return (E2BIG, cleanly { spawnRaw(probe, [], fds).error })
        case .orderE2bigBeforeAClosedEntry:
            // A closed entry far above the table: the first launch takes
            // it for open, so the list no longer looks longer than the
            // table, and its child fails with EBADF; the launch made again
            // with the model asking gives the model's E2BIG, which comes
            // first.
            let closed = o.dup(m, atLeast: 5000)
            o.close(closed)
            let fds = [Int32](repeating: m, count: 1023) + [closed]
            return (E2BIG, cleanly { spawnRaw(probe, [], fds).error })
        case .e2bigFdslenMedium:
            // Longer than 1024, shorter than the hard RLIMIT_NOFILE: read
            // first, then the table is walked since the list does not
            // reach its own length.
            let fds = [Int32](repeating: m, count: 5000)
            return (E2BIG, cleanly { spawnRaw(probe, [], fds).error })
        case .e2bigFdslenLong:
            // A long list: the table is looked at before the list is read
            // when it is longer than the hard RLIMIT_NOFILE (20,000 on
            // these machines), after it otherwise; E2BIG either way.
            let fds = [Int32](repeating: m, count: 100_000)
            return (E2BIG, cleanly { spawnRaw(probe, [], fds).error })
        case .e2bigSizeMax:
            // SIZE_MAX lengths, with no memory behind them: refused before
            // anything is read or allocated.
            let sizeMax = Int(bitPattern: UInt.max)
            let a = cleanly { spawnPointers(probe, nil, sizeMax, nil, 0) }
            let b = cleanly { spawnPointers(probe, nil, 0, nil, sizeMax) }
            return (E2BIG, a == E2BIG ? b : a)
        case .e2bigHugeArgdata:
            // A 256 MiB binary value: serialised, then refused as E2BIG.
            let size = 256 << 20
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { bytes.deallocate() }
            memset(bytes, 0x5A, size)
            let ad = argdata_create_binary(bytes, size)!
            defer { argdata_free(ad) }
            return (E2BIG, cleanly {
                var pid: pid_t = -1
                return program_spawn(probe, ad, &pid)
            })
        case .e2bigString:
            let d = [UInt8](repeating: 0x61, count: 131072)
            return (E2BIG, cleanly { spawnRaw(probe, d, std).error })
        case .e2bigEnvironment:
            let v = "V=" + String(repeating: "v", count: 131070)
            return (E2BIG, cleanly { spawnRaw(probe, [], std, env: [v]).error })
        case .e2bigTotal:
            // With an 8 MiB stack the kernel allows 2 MiB of strings and
            // pointers: 250000 empty strings need about 2.25 MiB.
            setSoftLimit(RLIMIT_STACK, 8 << 20)
            let d = [UInt8](repeating: 0, count: 250000)
            return (E2BIG, cleanly { spawnRaw(probe, d, std).error })
        case .efaultData:
            let page = unreadablePage()
            return (EFAULT, cleanly { [m] in
                [m].withUnsafeBufferPointer { spawnPointers(probe, page, 10, $0.baseAddress, 1) }
            })
        case .efaultFds:
            let page = unreadablePage()
            return (EFAULT, cleanly {
                spawnPointers(probe, nil, 0, page.assumingMemoryBound(to: Int32.self), 2)
            })
        case .efaultNullData:
            return (EFAULT, cleanly { [m] in
                [m].withUnsafeBufferPointer { spawnPointers(probe, nil, 5, $0.baseAddress, 1) }
            })
        case .emfileOverLimit:
            // 60 descriptors are fine for the model (one is open at 100 or
            // above) but not under a soft limit of 50.
            _ = o.dup(m, atLeast: 100)
            setSoftLimit(RLIMIT_NOFILE, 50)
            let fds = [Int32](repeating: m, count: 60)
            return (EMFILE, cleanly { spawnRaw(probe, [], fds).error })
        case .orderE2bigBeforeEfault:
            let page = unreadablePage()
            return (E2BIG, cleanly {
                spawnPointers(probe, page, Int(EXEC_ARG_MAX),
                              page.assumingMemoryBound(to: Int32.self), 1 << 40)
            })
        case .orderEfaultDataBeforeFds:
            let page = unreadablePage()
            return (EFAULT, cleanly {
                [Int32(-1)].withUnsafeBufferPointer {
                    spawnPointers(probe, page, 10, $0.baseAddress, 1)
                }
            })
        case .orderEfaultBeforeExecfd:
            let page = unreadablePage()
            return (EFAULT, cleanly {
                spawnPointers(-1, nil, 0, page.assumingMemoryBound(to: Int32.self), 1)
            })
        case .orderEbadfFdsBeforeExecfd:
            // The executable is not executable (EACCES), but a bad entry
            // of fds is found first.
            let f = o.tempFile(elf, mode: 0o644).fd
            return (EBADF, cleanly { spawnRaw(f, [], [m, -5]).error })
        case .orderModelBeforeArguments:
            // Strings too long (the activator's E2BIG), but the executable
            // is not open (the model's EBADF).
            let d = [UInt8](repeating: 0x61, count: 200000)
            return (EBADF, cleanly { spawnRaw(-1, d, std).error })
        case .orderArgumentsBeforeEmfile:
            _ = o.dup(m, atLeast: 100)
            setSoftLimit(RLIMIT_NOFILE, 50)
            let d = [UInt8](repeating: 0x61, count: 200000)
            let fds = [Int32](repeating: m, count: 60)
            return (E2BIG, cleanly { spawnRaw(probe, d, fds).error })
        }
    }
}

extension Opened {
    /// Adopts `fd` when it is open; false when it is -1.
    func adoptIfOpen(_ fd: Int32) -> Bool {
        if fd < 0 { return false }
        adopt(fd)
        return true
    }
}

/// Runs `launch` with its first, second, ... allocation failing
/// (`FDR_FAIL_MALLOC`) until one runs with none failing: each failing
/// launch must be ENOMEM and leave the table and no child behind; the
/// last must succeed. Returns it and how many allocations failed.
func launchFailingEachAllocation(_ launch: () -> Spawned,
                                 sourceLocation: SourceLocation = #_sourceLocation)
    -> (Spawned, UInt64) {
    var k: UInt64 = 1
    while true {
        fdr_fail_arm(FDR_FAIL_MALLOC, k)
        let before = tableSnapshot()
        let s = launch()
        let fired = fdr_fail_fired(FDR_FAIL_MALLOC) != 0
        fdr_fail_arm(FDR_FAIL_MALLOC, 0)
        if !fired {
            #expect(s.error == 0, sourceLocation: sourceLocation)
            return (s, k - 1)
        }
        #expect(s.error == ENOMEM, "allocation \(k)", sourceLocation: sourceLocation)
        #expect(tableSnapshot() == before, "allocation \(k)", sourceLocation: sourceLocation)
        #expect(hasNoChildren(), "allocation \(k)", sourceLocation: sourceLocation)
        k += 1
    }
}

/// Checks that an error case gave the error it expects.
func expectError(_ result: (expected: Int32, got: Int32), of c: some CustomStringConvertible,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.got == result.expected,
            "\(c): \(String(cString: strerror(result.got))), not \(String(cString: strerror(result.expected)))",
            sourceLocation: sourceLocation)
}

/// The numbers of the probe's "fill ..." line (see its fill command).
private func fillReport(_ r: ProbeReport) -> [Int]? {
    guard let line = r.text.split(separator: "\n").first(where: { $0.hasPrefix("fill ") })
    else { return nil }
    let w = line.split(separator: " ").dropFirst().compactMap { Int($0) }
    return w.count == 8 ? w : nil
}

@Suite struct ErrorTests {
    @Test(arguments: ErrorCase.allCases)
    func failsCleanly(_ c: ErrorCase) async {
        await #expect(processExitsWith: .success) { [c = c as ErrorCase] in
            expectError(c.run(), of: c.rawValue)
        }
    }

    /// Every allocation of a launch, made to fail in turn: ENOMEM, and
    /// nothing left behind; then it succeeds.
    @Test func everyAllocationFailureIsClean() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd(), a = o.memfd()
            let probe = o.open(Probe.path)
            let fds = [a, m, a, m]
            let (s, failures) = launchFailingEachAllocation {
                spawnRaw(probe, data(["report", "1"]), fds)
            }
            if s.error == 0 { reap(s.pid) }
            #expect(failures > 5, "a launch allocates several times")
        }
    }

    /// A full table, in the probe (a one-threaded C process: in a Swift
    /// process the runtime's and the test library's threads open and
    /// close descriptors meanwhile; a number freed lets the launch
    /// succeed, and Dispatch, denied its eventfd, once ended the process
    /// with SIGILL). "swap": no free number at or above the targets for
    /// the temporary a swap needs, EMFILE. "fail": a child that fails at
    /// execveat() (EACCES), reaped all the same (by its pid, as no
    /// number is free for the pidfd the launch takes of a failed child
    /// when the caller asked for none). Either way the table is as it
    /// was and no child is left.
    @Test(arguments: [("swap", EMFILE), ("fail", EACCES)])
    func aFullTableFailsCleanly(_ mode: String, _ error: Int32) throws {
        let o = Opened()
        let m = o.memfd()
        let (s, r) = runProbe([m], report: m, command: ["fill", "0", mode], checkPid: false)
        try #require(s.error == 0, "the probe did not start")
        let w = try #require(fillReport(r), "no fill report: \(r.text)").map { Int32($0) }
        #expect(w[0] == error, "\(r.text)")
        #expect(w[1] == 1, "the table changed")
        #expect(w[2] == 1, "a child was left behind")
    }

    /// A cycle, or the executable among the numbers to be overwritten,
    /// needs one free number at or above the targets, wherever the
    /// sources are: the probe puts them at the top of RLIMIT_NOFILE and
    /// leaves exactly one number of its whole table free (in a process
    /// of one thread, for the reasons above), then launches itself to
    /// report its table.
    @Test(arguments: ["cycle", "target"])
    func oneFreeNumberAboveTheTargetsIsEnough(_ mode: String) throws {
        let o = Opened()
        let m = o.memfd(), x = o.memfd(), y = o.memfd()
        let (s, r) = runProbe([m, x, y], report: m, command: ["fill", "0", mode],
                              checkPid: false)
        guard s.error == 0 else { return }
        let w = try #require(fillReport(r), "no fill report: \(r.text)")
        try #require(w.count == 8, "\(r.text)")
        #expect(w[0] == 0 && w[3] == 0, "launch \(w[0]), status \(w[3])")
        let (n, a, b) = (w[4], w[6], w[7])
        var sources = [FileID?](repeating: FileID(fd: m), count: n)
        if mode == "cycle" {
            sources[a] = FileID(fd: y)      // the probe's b is a copy of its 2
            sources[b] = FileID(fd: x)      // and its a of its 1
        }
        expectTable(r, sources: sources)
    }

    /// An entry no descriptor can have (INT32_MAX) is EBADF without a
    /// mirror its size: the first launch takes entries for open only
    /// below the hard RLIMIT_NOFILE (without that bound this launch grew
    /// the process by 256 MB).
    @Test func aHugeEntryIsEBADFWithoutAHugeMirror() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let probe = o.open(Probe.path)
            var before = rusage(), after = rusage()
            getrusage(RUSAGE_SELF.rawValue, &before)
            let error = cleanly { spawnRaw(probe, [], [m, Int32.max]).error }
            getrusage(RUSAGE_SELF.rawValue, &after)
            #expect(error == EBADF)
            #expect(after.ru_maxrss - before.ru_maxrss < 64 * 1024,
                    "grew by \(after.ru_maxrss - before.ru_maxrss) KB")
        }
    }

    /// A copy-in that fails (as if the memory were unreadable) is EFAULT.
    @Test func copyinFailuresAreEfault() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let probe = o.open(Probe.path)
            // Ours of fds (to mirror them), then the model's of data; the
            // model reads our copy of fds in place (kern_proc_exec), so
            // there is no third.
            for k in UInt64(1)...2 {
                fdr_fail_arm(FDR_FAIL_COPYIN, k)
                let error = cleanly { spawnRaw(probe, data(["report", "0"]), [m]).error }
                let fired = fdr_fail_fired(FDR_FAIL_COPYIN) != 0
                fdr_fail_arm(FDR_FAIL_COPYIN, 0)
                #expect(fired)
                #expect(error == EFAULT, "copy-in \(k)")
            }
            fdr_fail_arm(FDR_FAIL_COPYIN, 3)
            let s = spawnRaw(probe, data(["report", "0"]), [m])
            let fired = fdr_fail_fired(FDR_FAIL_COPYIN) != 0
            fdr_fail_arm(FDR_FAIL_COPYIN, 0)
            #expect(!fired && s.error == 0, "a third copy-in")
            if s.error == 0 { reap(s.pid) }
        }
    }

    /// The exec form fails cleanly too: the probe tries each bad
    /// executable on itself and compares its own table and threads.
    @Test func execFailuresLeaveTheProcessAsItWas() {
        let o = Opened()
        let m = o.memfd()
        let elf = Array("\u{7f}ELF".utf8) + [UInt8](repeating: 0, count: 60)
        let enoexec = o.tempFile(Array("garbage\n".utf8), mode: 0o755).fd
        let eacces = o.tempFile(elf, mode: 0o644).fd
        let enoent = o.tempFile(Array("#!/nonexistent/x\n".utf8), mode: 0o755).fd
        let (_, r) = runProbe([m, enoexec, eacces, enoent], report: m,
                              command: ["execfail", "0", "1", "2", "3"], checkPid: false)
        let got = Dictionary(uniqueKeysWithValues: r.lines("execfail").map {
            (String($0[1]), (Int32($0[2])!, $0[3] == "1"))
        })
        let want: [String: Int32] = [
            "fd1": ENOEXEC, "fd2": EACCES, "fd3": ENOENT, "badexecfd": EBADF,
            "badfds": EBADF, "bigdata": E2BIG, "bigstring": E2BIG,
        ]
        #expect(got.count == want.count, "\(r.text)")
        for (label, error) in want {
            #expect(got[label]?.0 == error, "\(label)")
            #expect(got[label]?.1 == true, "\(label) changed the process:\n\(r.text)")
        }
    }
}
