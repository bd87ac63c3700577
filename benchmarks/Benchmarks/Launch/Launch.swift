// Starting /bin/true with k descriptors remapped, k = 0, 3, 100, 1000,
// 10000: our launcher (C's program_spawn_raw, and Swift's Program.spawn
// with the descriptors in an argdata sequence) against glibc's
// posix_spawn with file actions (built per launch, and prebuilt), the
// floor (a hand-written clone + dup2 + close_range + execve),
// Foundation's Process and Python's subprocess.
//
// Names are Launch.<k>.<implementation>. Every iteration starts the
// program and waits for it to exit; "launch (ns)" is that time. These
// rows run one after another, each in a process of its own, so the
// machine's drift between them shows in their ratios; the targets are
// judged on the paired rows instead:
//   Launch.<k>.paired        each iteration launches with the floor, ours,
//                            prebuilt posix_spawn and the fresh floor (the
//                            floor done our way from 256 descriptors), in
//                            rotating order, and records each time and
//                            ours over each
//   Launch.<k>.swift.paired  each iteration launches with Swift's
//                            Program.spawn and C's program_spawn, the same
//                            tree, in alternating order, and records Swift
//                            over C
//   Launch.<k>.ours.first    the first launch of a fresh process (one
//                            sample), apart from the steady state
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
    // The paired rows: each launcher's time in the iteration, and ratios
    // of two taken in the same iteration.
    static let floorTime = BenchmarkMetric.custom(
        "floor (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let oursTime = BenchmarkMetric.custom(
        "ours (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let prebuiltTime = BenchmarkMetric.custom(
        "prebuilt (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let oursOverFloor = BenchmarkMetric.custom(
        "ours over floor (per mille)", polarity: .prefersSmaller, useScalingFactor: false)
    static let oursOverPrebuilt = BenchmarkMetric.custom(
        "ours over prebuilt (per mille)", polarity: .prefersSmaller, useScalingFactor: false)
    static let freshFloorTime = BenchmarkMetric.custom(
        "fresh floor (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let oursOverFreshFloor = BenchmarkMetric.custom(
        "ours over fresh floor (per mille)", polarity: .prefersSmaller, useScalingFactor: false)
    static let swiftTime = BenchmarkMetric.custom(
        "swift (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let cTime = BenchmarkMetric.custom(
        "c (ns)", polarity: .prefersSmaller, useScalingFactor: false)
    static let swiftOverC = BenchmarkMetric.custom(
        "swift over c (per mille)", polarity: .prefersSmaller, useScalingFactor: false)
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
    benchmark.measurement(.launch, Int(launchAndWait(spawn)))
}

/// One launch and its wait, in nanoseconds; the child must exit 0.
func launchAndWait(_ spawn: () -> (Int32, pid_t)) -> UInt64 {
    let t0 = launch_now_ns()
    let (error, pid) = spawn()
    guard error == 0 else { fatalError("spawn: \(error)") }
    guard launch_wait(pid) == 0 else { fatalError("\(program) failed") }
    return launch_now_ns() - t0
}

/// Ours from C: program_spawn_raw with the list, given argv[0] (pa_name)
/// as the floor and posix_spawn are given it.
func spawnOurs(_ fds: [Int32]) -> (Int32, pid_t) {
    var pid: pid_t = 0
    let error = program.withCString { name in
        var attr = program_attr()
        attr.pa_name = name
        return fds.withUnsafeBufferPointer {
            program_spawn_raw(executable, nil, 0, $0.baseAddress, $0.count, &attr, &pid)
        }
    }
    return (error, pid)
}

/// Ours from C with the descriptors as the argdata sequence cTree:
/// program_spawn serialises it and launches.
func spawnOursTree() -> (Int32, pid_t) {
    var pid: pid_t = 0
    let error = program_spawn(executable, cTree!.seq, &pid)
    return (error, pid)
}

func openOursWithTree(_ k: Int) {
    openOurs(k)
    cTree = CTree(sources!.fds)
}

func closeOursWithTree() {
    cTree = nil
    closeOurs()
}

func spawnFloor(_ fds: [Int32]) -> (Int32, pid_t) {
    var pid: pid_t = 0
    let error = fds.withUnsafeBufferPointer {
        launch_floor(program, $0.baseAddress, $0.count, &pid)
    }
    return (error, pid)
}

func spawnFreshFloor(_ fds: [Int32]) -> (Int32, pid_t) {
    var pid: pid_t = 0
    let error = fds.withUnsafeBufferPointer {
        launch_floor_fresh(program, $0.baseAddress, $0.count, &pid)
    }
    return (error, pid)
}

func spawnPrebuilt() -> (Int32, pid_t) {
    var pid: pid_t = 0
    let error = launch_posix_spawn_prebuilt(program, &pid)
    return (error, pid)
}

/// Swift's Program.spawn with the descriptors as an argdata sequence
/// (built outside the timing, as the C tree is), to its exit.
func launchSwift(_ tree: Argdata) throws -> UInt64 {
    let t0 = launch_now_ns()
    let child = try Program.spawn(FileDescriptor(rawValue: executable), argdata: tree)
    guard try child.wait() == .exited(0) else { fatalError("\(program) failed") }
    return launch_now_ns() - t0
}

func pairedConfiguration(_ metrics: [BenchmarkMetric]) -> Benchmark.Configuration {
    .init(metrics: metrics, timeUnits: .microseconds, warmupIterations: 5,
          maxDuration: .seconds(4), maxIterations: 1_000)
}

/// The paired rows of k (see the top of this file).
func registerPaired(_ k: Int) {
    Benchmark("Launch.\(k).paired",
              configuration: pairedConfiguration([.floorTime, .oursTime, .prebuiltTime,
                                                  .freshFloorTime, .oursOverFloor,
                                                  .oursOverPrebuilt,
                                                  .oursOverFreshFloor])) { benchmark in
        let fds = sources!.fds
        var t = [UInt64](repeating: 0, count: 4)
        // Rotate which goes first, so none always follows another.
        for i in 0..<4 {
            let w = (i + benchmark.currentIteration) % 4
            t[w] = launchAndWait {
                switch w {
                case 0: spawnFloor(fds)
                case 1: spawnOurs(fds)
                case 2: spawnPrebuilt()
                default: spawnFreshFloor(fds)
                }
            }
        }
        benchmark.measurement(.floorTime, Int(t[0]))
        benchmark.measurement(.oursTime, Int(t[1]))
        benchmark.measurement(.prebuiltTime, Int(t[2]))
        benchmark.measurement(.freshFloorTime, Int(t[3]))
        benchmark.measurement(.oursOverFloor, Int(t[1] * 1000 / max(t[0], 1)))
        benchmark.measurement(.oursOverPrebuilt, Int(t[1] * 1000 / max(t[2], 1)))
        benchmark.measurement(.oursOverFreshFloor, Int(t[1] * 1000 / max(t[3], 1)))
    } setup: {
        openOurs(k)
        let fds = sources!.fds
        guard fds.withUnsafeBufferPointer({ launch_actions_build($0.baseAddress, k) }) == 0
        else { fatalError("posix_spawn actions") }
    } teardown: {
        launch_actions_free()
        closeOurs()
    }

    Benchmark("Launch.\(k).swift.paired",
              configuration: pairedConfiguration([.swiftTime, .cTime, .swiftOverC])) { benchmark in
        let tree = Argdata.seq(sources!.fds.map { .fd(FileDescriptor(rawValue: $0)) })
        var swift: UInt64 = 0, c: UInt64 = 0
        let launchC = { launchAndWait(spawnOursTree) }
        if benchmark.currentIteration % 2 == 0 {
            swift = try launchSwift(tree)
            c = launchC()
        } else {
            c = launchC()
            swift = try launchSwift(tree)
        }
        benchmark.measurement(.swiftTime, Int(swift))
        benchmark.measurement(.cTime, Int(c))
        benchmark.measurement(.swiftOverC, Int(swift * 1000 / max(c, 1)))
    } setup: {
        openOursWithTree(k)
    } teardown: {
        closeOursWithTree()
    }

    // The first launch this process makes: the launcher's first use of
    // its allocator, its reaper and the pages they touch.
    var once = configuration()
    once.warmupIterations = 0
    once.maxIterations = 1
    registerOurs("Launch.\(k).ours.first", k, once)
}

/// Ours from C (spawnOurs) timed alone, one launch an iteration.
func registerOurs(_ name: String, _ k: Int, _ configuration: Benchmark.Configuration) {
    Benchmark(name, configuration: configuration) { benchmark in
        let fds = sources!.fds
        timed(benchmark) { spawnOurs(fds) }
    } setup: {
        openOurs(k)
    } teardown: {
        closeOurs()
    }
}

let benchmarks: @Sendable () -> Void = {
    for k in counts {
        registerPaired(k)
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
                spawnPrebuilt()
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
            timed(benchmark) { spawnFloor(fds) }
        } setup: {
            sources = Sources(k: k)
        } teardown: {
            sources = nil
        }

        // Ours, from C: the list is the mapping, any mapping would do;
        // argv[0] given (pa_name), as the floor and posix_spawn are given
        // it, rather than read from the descriptor's /proc link.
        registerOurs("Launch.\(k).ours", k, configuration())

        // Ours, from C, with the descriptors as an argdata sequence built
        // once (cloudlibc's argdata_create_fd and _seq): program_spawn
        // serialises it and launches, the work the Swift row does.
        Benchmark("Launch.\(k).ours.argdata", configuration: configuration()) { benchmark in
            timed(benchmark, spawnOursTree)
        } setup: {
            openOursWithTree(k)
        } teardown: {
            closeOursWithTree()
        }

        // Ours, from Swift: the descriptors as an argdata sequence, which
        // numbers them 0 ..< k in order; the tree travels too.
        Benchmark("Launch.\(k).ours.swift", configuration: configuration()) { benchmark in
            let tree = Argdata.seq(sources!.fds.map { .fd(FileDescriptor(rawValue: $0)) })
            benchmark.measurement(.launch, Int(try launchSwift(tree)))
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
