// Starting /bin/true with k descriptors remapped, k = 0, 3, 100, 1000,
// 10000: our launcher against glibc's posix_spawn with file actions,
// Foundation's Process and Python's subprocess.
//
// Names are Launch.<k>.<implementation>. Every iteration starts the
// program and waits for it to exit; "launch (ns)" is that time.
import Benchmark
import CLaunchBench
import CRemapBench
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let program = "/bin/true"
let counts = [0, 3, 100, 1000, 10_000]

extension BenchmarkMetric {
    static let launch = BenchmarkMetric.custom(
        "launch (ns)", polarity: .prefersSmaller, useScalingFactor: false)
}

/// The descriptors to pass: /dev/null opened at base ..< base + k, above
/// every target, and the list giving child descriptor i = fds[i], a
/// random permutation of them. No source is a target, so posix_spawn's
/// dup2 actions in order do it right.
///
/// The base is k + 64, or lower when RLIMIT_NOFILE (20000 here, and not
/// to be raised) leaves no room: 10000 descriptors sit at 10000 ..< 20000.
func sourceBase(_ k: Int) -> Int32 {
    let limit = launch_raise_nofile()
    guard limit >= 2 * k else { fatalError("RLIMIT_NOFILE \(limit) < \(2 * k)") }
    return Int32(min(k + 64, limit - k))
}

final class Sources: @unchecked Sendable {
    let base: Int32
    let fds: [Int32]

    init(k: Int) {
        let base = sourceBase(k)
        guard launch_open_sources(base, Int32(k)) == 0
        else { fatalError("cannot open \(k) descriptors") }
        var perm = [CInt](repeating: 0, count: k)
        _ = bench_list_fill(Int32(BENCH_LIST_RANDOM.rawValue), &perm, k, 0x1a0c_0001)
        self.base = base
        fds = perm.map { base + $0 }
    }

    deinit { launch_close_sources(base, Int32(fds.count)) }
}

nonisolated(unsafe) var sources: Sources?

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
