// Starting /bin/true with k descriptors remapped, k = 0, 3, 100, 1000,
// 10000: our launcher (C's program_spawn_raw, and Swift's Program.spawn
// with the descriptors in an argdata sequence) against glibc's
// posix_spawn with file actions (built per launch, and prebuilt), the
// floor (a hand-written clone + dup2 + close_range + execve),
// Foundation's Process and Python's subprocess.
//
// Names are Launch.<k>.<implementation>. Every iteration starts the
// program and waits for it to exit; "launch (ns)" is that time.
import Benchmark
import CArgdata
import CLaunchBench
import CFDRemapHost
import CRemapBench
import FDRemap
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

let program = "/bin/true"
let counts = [0, 3, 100, 1000, 10_000]

extension BenchmarkMetric {
    static let launch = BenchmarkMetric.custom(
        "launch (ns)", polarity: .prefersSmaller, useScalingFactor: false)
}

/// The descriptors to pass: /dev/null opened at base ..< base + k, and
/// the list giving child descriptor i = fds[i], a random permutation of
/// them, fixed up so that posix_spawn's dup2 actions, run in order, never
/// overwrite a source before reading it (fds[i] > i for every source
/// below k): a mapping without cycles, which posix_spawn can do.
///
/// The base is k + 64, above every target; when RLIMIT_NOFILE (20000
/// here, and not to be raised) leaves no room for that and 100 spare
/// descriptors (for the launchers' own use), the sources come down and
/// the top ones overlap the targets: 10000 sit at 9900 ..< 19900.
final class Sources: @unchecked Sendable {
    let base: Int32
    let fds: [Int32]

    init(k: Int) {
        let base = sourceBase(k)
        guard launch_open_sources(base, Int32(k)) == 0
        else { fatalError("cannot open \(k) descriptors") }
        var perm = [CInt](repeating: 0, count: k)
        _ = bench_list_fill(Int32(BENCH_LIST_RANDOM.rawValue), &perm, k, 0x1a0c_0001)
        var fds = perm.map { base + $0 }
        for j in fds.indices where Int(fds[j]) < k && Int(fds[j]) <= j {
            let v = Int(fds[j])
            guard let i = fds.indices.first(where: { $0 < v && Int(fds[$0]) >= k })
            else { fatalError("no mapping without cycles for \(k)") }
            fds.swapAt(i, j)
        }
        self.base = base
        self.fds = fds
    }

    deinit { launch_close_sources(base, Int32(fds.count)) }
}

func sourceBase(_ k: Int) -> Int32 {
    let limit = launch_raise_nofile()
    guard limit >= k + 164 else { fatalError("RLIMIT_NOFILE \(limit) < \(k + 164)") }
    return Int32(min(k + 64, limit - 100 - k))
}

nonisolated(unsafe) var sources: Sources?
nonisolated(unsafe) var executable: CInt = -1

/// Our launchers' fixture: the sources, and the program open with O_PATH.
func openOurs(_ k: Int) {
    sources = Sources(k: k)
    executable = launch_open_exec(program)
    guard executable >= 0 else { fatalError("cannot open \(program)") }
}

func closeOurs() {
    sources = nil
    close(executable)
}

/// A Python interpreter that starts the program with subprocess.Popen
/// each time it reads a line, and answers with the nanoseconds it took.
/// Python cannot renumber descriptors: it passes its own k sources at
/// their numbers (pass_fds), the closest it comes.
final class PythonLauncher: @unchecked Sendable {
    let process = Process()
    let toPython = Pipe()
    let fromPython = Pipe()

    static let script = """
        import os, subprocess, sys, time
        k, base = int(sys.argv[1]), int(sys.argv[2])
        null = os.open('/dev/null', os.O_RDWR)
        fds = [os.dup2(null, base + i) for i in range(k)]
        os.close(null)
        for _ in sys.stdin.buffer:
            t0 = time.perf_counter_ns()
            subprocess.Popen(['\(program)'], pass_fds=fds, close_fds=True).wait()
            sys.stdout.write('%d\\n' % (time.perf_counter_ns() - t0))
            sys.stdout.flush()
        """

    init(k: Int) throws {
        let base = sourceBase(k)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, "\(k)", "\(base)"]
        process.standardInput = toPython
        process.standardOutput = fromPython
        try process.run()
    }

    /// One launch, timed by Python.
    func launch() -> Int {
        let w = toPython.fileHandleForWriting.fileDescriptor
        let r = fromPython.fileHandleForReading.fileDescriptor
        var nl: UInt8 = 10
        guard write(w, &nl, 1) == 1 else { fatalError("python went away") }
        var line: [UInt8] = []
        var c: UInt8 = 0
        while read(r, &c, 1) == 1, c != 10 { line.append(c) }
        guard let ns = Int(String(decoding: line, as: UTF8.self)) else {
            fatalError("python said \(line)")
        }
        return ns
    }

    deinit {
        try? toPython.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

nonisolated(unsafe) var python: PythonLauncher?

/// An argdata sequence of the descriptors, made with the C library.
final class CTree: @unchecked Sendable {
    // argdata_t is opaque: Swift sees its pointers as OpaquePointer.
    let entries: [OpaquePointer?]
    let seq: OpaquePointer

    init(_ fds: [Int32]) {
        entries = fds.map { argdata_create_fd($0) }
        let made = entries.withUnsafeBufferPointer {
            argdata_create_seq($0.baseAddress, $0.count)
        }
        guard let made, !entries.contains(nil) else { fatalError("argdata: out of memory") }
        seq = made
    }

    deinit {
        argdata_free(seq)
        for e in entries { argdata_free(e) }
    }
}

nonisolated(unsafe) var cTree: CTree?

func configuration() -> Benchmark.Configuration {
    .init(metrics: [.wallClock, .throughput, .peakMemoryResident, .launch],
          timeUnits: .microseconds, warmupIterations: 5,
          maxDuration: .seconds(2), maxIterations: 2_000)
}

/// Times one launch and its wait; the child must exit 0.
func timed(_ benchmark: Benchmark, _ spawn: () -> (Int32, pid_t)) {
    let t0 = launch_now_ns()
    let (error, pid) = spawn()
    guard error == 0 else { fatalError("spawn: \(error)") }
    guard launch_wait(pid) == 0 else { fatalError("\(program) failed") }
    benchmark.measurement(.launch, Int(launch_now_ns() - t0))
}

let benchmarks: @Sendable () -> Void = {
    for k in counts {
        Benchmark("Launch.\(k).posix_spawn", configuration: configuration()) { benchmark in
            let fds = sources!.fds
            timed(benchmark) {
                var pid: pid_t = 0
                let error = fds.withUnsafeBufferPointer {
                    launch_posix_spawn(program, $0.baseAddress, k, &pid)
                }
                return (error, pid)
            }
        } setup: {
            sources = Sources(k: k)
        } teardown: {
            sources = nil
        }

        // posix_spawn with its actions built once, outside the timing.
        Benchmark("Launch.\(k).posix_spawn.prebuilt", configuration: configuration()) { benchmark in
            timed(benchmark) {
                var pid: pid_t = 0
                let error = launch_posix_spawn_prebuilt(program, &pid)
                return (error, pid)
            }
        } setup: {
            sources = Sources(k: k)
            let fds = sources!.fds
            guard fds.withUnsafeBufferPointer({ launch_actions_build($0.baseAddress, k) }) == 0
            else { fatalError("posix_spawn actions") }
        } teardown: {
            launch_actions_free()
            sources = nil
        }

        // The floor: clone(CLONE_VM | CLONE_VFORK) + dup2 loop +
        // close_range + execve, by hand, without any of our guarantees.
        Benchmark("Launch.\(k).floor", configuration: configuration()) { benchmark in
            let fds = sources!.fds
            timed(benchmark) {
                var pid: pid_t = 0
                let error = fds.withUnsafeBufferPointer {
                    launch_floor(program, $0.baseAddress, k, &pid)
                }
                return (error, pid)
            }
        } setup: {
            sources = Sources(k: k)
        } teardown: {
            sources = nil
        }

        // Ours, from C: the list is the mapping, any mapping would do;
        // argv[0] given (pa_name), as the floor and posix_spawn are given
        // it, rather than read from the descriptor's /proc link.
        Benchmark("Launch.\(k).ours", configuration: configuration()) { benchmark in
            let fds = sources!.fds
            timed(benchmark) {
                var pid: pid_t = 0
                let error = program.withCString { name in
                    var attr = program_attr()
                    attr.pa_name = name
                    return fds.withUnsafeBufferPointer {
                        program_spawn_raw(executable, nil, 0, $0.baseAddress, k, &attr, &pid)
                    }
                }
                return (error, pid)
            }
        } setup: {
            openOurs(k)
        } teardown: {
            closeOurs()
        }

        // Ours, from C, with the descriptors as an argdata sequence built
        // once (cloudlibc's argdata_create_fd and _seq): program_spawn
        // serialises it and launches, the work the Swift row does.
        Benchmark("Launch.\(k).ours.argdata", configuration: configuration()) { benchmark in
            timed(benchmark) {
                var pid: pid_t = 0
                let error = program_spawn(executable, cTree!.seq, &pid)
                return (error, pid)
            }
        } setup: {
            openOurs(k)
            cTree = CTree(sources!.fds)
        } teardown: {
            cTree = nil
            closeOurs()
        }

        // Ours, from Swift: the descriptors as an argdata sequence, which
        // numbers them 0 ..< k in order; the tree travels too.
        Benchmark("Launch.\(k).ours.swift", configuration: configuration()) { benchmark in
            let tree = Argdata.seq(sources!.fds.map { .fd(FileDescriptor(rawValue: $0)) })
            let t0 = launch_now_ns()
            let child = try Program.spawn(FileDescriptor(rawValue: executable), argdata: tree)
            guard try child.wait() == .exited(0) else { fatalError("\(program) failed") }
            benchmark.measurement(.launch, Int(launch_now_ns() - t0))
        } setup: {
            openOurs(k)
        } teardown: {
            closeOurs()
        }

        Benchmark("Launch.\(k).python", configuration: configuration()) { benchmark in
            benchmark.measurement(.launch, python!.launch())
        } setup: {
            python = try PythonLauncher(k: k)
        } teardown: {
            python = nil
        }
    }

    // Foundation's Process passes standard input, output and error only.
    Benchmark("Launch.3.foundation", configuration: configuration()) { benchmark in
        let t0 = launch_now_ns()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { fatalError("\(program) failed") }
        benchmark.measurement(.launch, Int(launch_now_ns() - t0))
    }
}
