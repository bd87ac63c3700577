// How the data travels (argv[0] a name, argv[1...] the data split at
// each NUL), the environment, the signal state a child starts with, the
// #! policy, and the exec form.
import CFDRemapHost
import Glibc
import Testing
import FDRemapTestSupport

/// FNV-1a 64 of `bytes`, as the probe's datahash computes it.
func fnv1a(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 14_695_981_039_346_656_037
    for b in bytes { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

@Suite struct TransportTests {
    @Test(arguments: [
        ("", [String]()),
        ("abc", ["abc"]),
        ("a\0b\0", ["a", "b", ""]),
        ("\0", ["", ""]),
        ("\0\0x", ["", "", "x"]),
    ])
    func dataIsSplitAtEachNul(_ input: String, _ strings: [String]) {
        let o = Opened()
        let m = o.memfd()
        let (_, r) = runProbe([m], report: m, command: ["report", "0"], bytes: Array(input.utf8))
        #expect(r.args.dropFirst().map { String(decoding: $0, as: UTF8.self) } == strings)
    }

    @Test func everyByteValueArrivesUnchanged() {
        let o = Opened()
        let m = o.memfd()
        var g = SplitMix64(seed: 3)
        let bytes = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &g) }
        let (_, r) = runProbe([m], report: m, command: ["datahash", "0"], bytes: bytes)
        let line = r.lines("datahash").first ?? []
        #expect(line.count == 4)
        #expect(line.dropFirst().map(String.init) ==
                ["\(bytes.filter { $0 == 0 }.count + 2)", "\(bytes.count)", fnv1a(bytes)])
    }

    @Test func argv0IsTheFileNameOrTheGivenName() {
        let o = Opened()
        let m = o.memfd(), m2 = o.memfd()
        let (_, r1) = runProbe([m], report: m)
        #expect(r1.args.first == Array("fdremap-probe".utf8))
        let (_, r2) = runProbe([m2], report: m2, name: "custom name")
        #expect(r2.args.first == Array("custom name".utf8))
    }

    @Test func theEnvironmentIsEmptyUnlessGiven() {
        let o = Opened()
        let m = o.memfd(), m2 = o.memfd()
        let (_, r1) = runProbe([m], report: m)
        #expect(r1.env.isEmpty)
        let (_, r2) = runProbe([m2], report: m2, env: ["A=1", "EMPTY="])
        #expect(r2.env == [Array("A=1".utf8), Array("EMPTY=".utf8)])
    }

    @Test func theLongestStringAndTheLargestDataFit() {
        let o = Opened()
        let m = o.memfd(), m2 = o.memfd()
        // 131071 bytes and its NUL: Linux's MAX_ARG_STRLEN exactly.
        let run = [UInt8](repeating: 0x61, count: 131071)
        let (_, r1) = runProbe([m], report: m, command: ["datahash", "0"], bytes: run)
        #expect(r1.lines("datahash").first?[3].description == fnv1a(run))
        // EXEC_ARG_MAX - 1 bytes, a NUL every 100.
        let big = (0..<262143).map { $0 % 100 == 99 ? UInt8(0) : UInt8(0x62) }
        let (_, r2) = runProbe([m2], report: m2, command: ["datahash", "0"], bytes: big)
        #expect(r2.lines("datahash").first?[3].description == fnv1a(big))
    }

    @Test func manyStringsUpToTheKernelsTotal() async {
        await #expect(processExitsWith: .success) {
            // With an 8 MiB stack: 200000 empty strings fit in 2 MiB.
            setSoftLimit(RLIMIT_STACK, 8 << 20)
            let o = Opened()
            let m = o.memfd()
            let d = [UInt8](repeating: 0, count: 200_000)
            let (_, r) = runProbe([m], report: m, command: ["datahash", "0"], bytes: d)
            #expect(r.lines("datahash").first?.dropFirst().map(String.init) ==
                    ["200002", "200000", fnv1a(d)])
        }
    }

    @Test func theChildStartsWithTheCallersMaskAndIgnoredSignals() async {
        await #expect(processExitsWith: .success) {
            // Exactly SIGUSR1 blocked in this thread (the launcher blocks
            // everything around the clone and must restore this).
            var set = sigset_t(), old = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGUSR1)
            pthread_sigmask(SIG_SETMASK, &set, &old)
            defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
            signal(SIGUSR2, SIG_IGN)
            signal(SIGTERM) { _ in }
            let o = Opened()
            let m = o.memfd()
            let (_, r) = runProbe([m], report: m)
            let report = "blocked \(String(r.blocked, radix: 16)), ignored \(String(r.ignored, radix: 16))"
            #expect(r.blocked == 1 << (SIGUSR1 - 1), "\(report)")
            #expect(r.ignored & (1 << (SIGUSR2 - 1)) != 0, "\(report)")
            #expect(r.ignored & (1 << (SIGTERM - 1)) == 0, "\(report)")
            // The caller's own mask is as it was.
            var now = sigset_t()
            pthread_sigmask(SIG_BLOCK, nil, &now)
            #expect(sigismember(&now, SIGUSR1) == 1 && sigismember(&now, SIGUSR2) == 0,
                    "the caller's mask changed")
        }
    }

    @Test func theExecutableMayBeAnOPathDescriptor() {
        let o = Opened()
        let m = o.memfd()
        let probe = o.open(Probe.path, O_PATH_LINUX)
        let s = spawnRaw(probe, data(["report", "0"]), [m])
        #expect(s.error == 0)
        guard s.error == 0 else { return }
        reap(s.pid)
        expectTable(ProbeReport(Probe.read(m)), sources: [FileID(fd: m)])
    }
}

@Suite struct ScriptTests {
    /// A script that runs the probe with its arguments.  bash, because
    /// it keeps its own descriptor of the script close-on-exec (dash does
    /// not when that descriptor is 10 or above).
    func script(_ o: Opened) -> Int32 {
        o.tempFile(Array("#!/bin/bash\nexec '\(Probe.path)' \"$@\"\n".utf8), mode: 0o755).fd
    }

    @Test func aScriptGetsItsOwnFileAsTheOneExtraDescriptor() {
        let o = Opened()
        let m = o.memfd(), a = o.memfd()
        let sh = script(o)
        let s = spawnRaw(sh, data(["report", "1"]), [a, m])
        #expect(s.error == 0)
        guard s.error == 0 else { return }
        #expect(exitCode(reap(s.pid)) == 0)
        // Descriptors 0 and 1 as asked, and 2 (= fdslen): the script.
        expectTable(ProbeReport(Probe.read(m)), sources: [a, m, sh].map { FileID(fd: $0) })
    }

    @Test func aScriptPassedAtItsOwnNumberNeedsNoExtra() {
        let o = Opened()
        let m = o.memfd()
        let sh = script(o)
        // The script's descriptor is passed as itself: fds[sh] == sh.
        var fds = [Int32](repeating: m, count: Int(sh) + 1)
        fds[Int(sh)] = sh
        let s = spawnRaw(sh, data(["report", "0"]), fds)
        #expect(s.error == 0)
        guard s.error == 0 else { return }
        #expect(exitCode(reap(s.pid)) == 0)
        expectTable(ProbeReport(Probe.read(m)), sources: fds.map { FileID(fd: $0) })
    }

    @Test func aMissingInterpreterIsEnoent() {
        let o = Opened()
        let m = o.memfd()
        let bad = o.tempFile(Array("#!/nonexistent/sh\n".utf8), mode: 0o755).fd
        #expect(spawnRaw(bad, [], [m]).error == ENOENT)
    }
}

@Suite struct ExecTests {
    /// program_exec_raw() from a Swift process with busy threads: the
    /// probe replaces it (the exit test sees the probe's status) and
    /// reports through a file to this process.
    @Test func execFromAThreadedSwiftProcess() async throws {
        let path = "/tmp/fdremap-exec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        await #expect(processExitsWith: .success) { [path = path as String] in
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            let probe = open(Probe.path, O_RDONLY | O_CLOEXEC)
            let stray = open("/dev/null", O_RDONLY)
            let openers = Openers(count: 2)
            _ = openers
            let d = data(["report", "0"])
            let error = d.withUnsafeBytes { b in
                [fd].withUnsafeBufferPointer { f in
                    program_exec_raw(probe, b.baseAddress, b.count, f.baseAddress, 1, nil)
                }
            }
            Issue.record("program_exec_raw returned \(error), stray \(stray)")
        }
        let o = Opened()
        let fd = o.open(path)
        let r = ProbeReport(Probe.read(fd))
        expectTable(r, sources: [FileID(fd: fd)])
    }

    /// program_exec_raw() replaces the driver: same pid, exact table.
    @Test(arguments: [
        ["0", "1", "2"],
        ["2", "1", "0", "3c"],
        ["3", "3", "1", "0"],
        ["1x", "3", "2", "0", "4"],   // the executable is at 1: moved
    ])
    func execReplacesTheProcess(_ mapping: [String]) {
        let o = Opened()
        let table = (0..<5).map { _ in o.memfd() }
        let (r, want) = viaDriver("exec", table: table, report: table[3], mapping: mapping)
        expectTable(r, sources: want)
    }
}
