// Remapping descriptor tables of 1K to 16M descriptors: our C core, its
// Swift face, and the baselines, side by side.
//
// Names are Remap.<size>.<list>.<implementation>; each benchmark runs in
// a process of its own, builds its table once (setup) and remaps it on
// every iteration. Besides wall clock, throughput and peak memory, each
// reports per-entry times (copy, free and both) and the new table's
// bytes, as custom metrics, so that sizes can be compared directly.
import Benchmark
#if canImport(Glibc)
import Glibc
#endif
import CFDRemapKernel
import CRemapBench
@_spi(KernelAccess) import FDRemap

/// A table size, and how long to spend on it.
struct Size: Sendable {
    let label: String
    let n: Int
    let maxIterations: Int
    let maxDuration: Duration
    let warmup: Int

    static let all: [Size] = [
        Size(label: "1K", n: 1_000, maxIterations: 20_000, maxDuration: .seconds(1), warmup: 100),
        Size(label: "64K", n: 65_536, maxIterations: 2_000, maxDuration: .seconds(1), warmup: 10),
        Size(label: "1M", n: 1 << 20, maxIterations: 40, maxDuration: .seconds(2), warmup: 2),
        Size(label: "16M", n: 1 << 24, maxIterations: 5, maxDuration: .seconds(8), warmup: 1),
    ]
}

/// A descriptor list. Every table's files were installed in random
/// order, so that descriptor order and memory order disagree, as in a
/// table that has lived long: even the identity list visits the files
/// in random memory order.
enum List: String, CaseIterable, Sendable {
    case identity, reversed, random, half, same

    var kind: Int32 {
        switch self {
        case .identity: Int32(BENCH_LIST_IDENTITY.rawValue)
        case .reversed: Int32(BENCH_LIST_REVERSED.rawValue)
        case .random: Int32(BENCH_LIST_RANDOM.rawValue)
        case .half: Int32(BENCH_LIST_HALF.rawValue)
        case .same: Int32(BENCH_LIST_SAME.rawValue)
        }
    }

    /// The list over a table of `n` descriptors (seeded: every run and
    /// every implementation gets the same one).
    func descriptors(n: Int) -> [Int32] {
        var count = 0
        let fds = [Int32](unsafeUninitializedCapacity: n) { buf, initialized in
            buf.withMemoryRebound(to: CInt.self) {
                count = bench_list_fill(kind, $0.baseAddress, n, listSeed)
            }
            initialized = n
        }
        return Array(fds.prefix(count))
    }
}

let listSeed: UInt64 = 0x5eed_0001
let tableSeed: UInt64 = 0x5eed_0002

extension BenchmarkMetric {
    static let timePerEntry = BenchmarkMetric.custom(
        "time per entry (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let copyPerEntry = BenchmarkMetric.custom(
        "copy per entry (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let freePerEntry = BenchmarkMetric.custom(
        "free per entry (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let entriesPerSecond = BenchmarkMetric.custom(
        "entries per second (K)", polarity: .prefersLarger, useScalingFactor: false)
    static let tableBytes = BenchmarkMetric.custom(
        "table bytes per 1000 entries", polarity: .prefersSmaller, useScalingFactor: false)
    /// swift.module only: the C core on the same table in the same
    /// iteration, and the Swift path's time over it.
    static let cCorePerEntry = BenchmarkMetric.custom(
        "C core on the same table per entry (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let swiftOverC = BenchmarkMetric.custom(
        "Swift over C core in the same iteration (per mille)", polarity: .prefersSmaller,
        useScalingFactor: false)
}

/// Records one iteration: `copy` and `free` nanoseconds for `n` entries.
func record(_ benchmark: Benchmark, n: Int, copy: UInt64, free: UInt64, bytes: Int? = nil) {
    let entries = UInt64(max(n, 1))
    benchmark.measurement(.copyPerEntry, Int(copy * 1000 / entries))
    benchmark.measurement(.freePerEntry, Int(free * 1000 / entries))
    benchmark.measurement(.timePerEntry, Int((copy + free) * 1000 / entries))
    if copy + free > 0 {
        benchmark.measurement(.entriesPerSecond, Int(entries * 1_000_000 / (copy + free)))
    }
    if let bytes {
        benchmark.measurement(.tableBytes, bytes * 1000 / Int(entries))
    }
}

// MARK: Fixtures, built once per benchmark (each runs in its own process)

/// A process of the model with `n` files, built in C, and a list.
final class CFixture: @unchecked Sendable {
    let td: UnsafeMutablePointer<thread>
    let fds: [Int32]
    /// Destination of the memcpy and gather baselines: allocated and
    /// written once, so they copy into warm memory.
    let dst: UnsafeMutablePointer<filedescent>
    /// FreeBSD's table of the same files (48-byte slots), for its rows.
    var bsd: UnsafeMutablePointer<freebsd_filedesc>?
    let bsdAlloc: Int32

    init(size: Size, list: List, freebsd alloc: Int32? = nil) {
        guard let td = bench_proc_build(size.n, 1, tableSeed) else {
            fatalError("cannot build a table of \(size.n) files")
        }
        self.td = td
        fds = list.descriptors(n: size.n)
        // From libc, not the core's allocator: the block the core keeps
        // warm for the first exec must stay the core's.
        dst = calloc(size.n, MemoryLayout<filedescent>.stride)!
            .bindMemory(to: filedescent.self, capacity: size.n)
        bsdAlloc = alloc ?? FREEBSD_ALLOC_FDR
        if alloc != nil {
            guard let t = freebsd_table_of(td.pointee.td_proc.pointee.p_fd, bsdAlloc) else {
                fatalError("cannot build FreeBSD's table of \(size.n) files")
            }
            bsd = t
        }
    }

    var fdp: UnsafeMutablePointer<filedesc> { td.pointee.td_proc.pointee.p_fd }

    deinit {
        if let bsd { freebsd_fdescfree_remapped(bsd, bsdAlloc) }
        free(dst)
        proc_destroy(td)
    }
}

/// What a Swift programmer would write instead: open files as objects,
/// a table as an array of references, ARC doing the counting.
final class OpenFile {
    let flags: Int
    init(flags: Int) { self.flags = flags }
}

final class ArrayFixture: @unchecked Sendable {
    let table: [OpenFile]
    let fds: [Int32]

    init(size: Size, list: List) {
        let table = (0..<size.n).map { OpenFile(flags: $0) }
        self.table = permutation(size.n, seed: tableSeed).map { table[$0] }
        fds = list.descriptors(n: size.n)
    }
}

/// A random permutation of 0 ..< n, seeded (the C lists' generator).
func permutation(_ n: Int, seed: UInt64) -> [Int] {
    var perm = [CInt](repeating: 0, count: n)
    _ = bench_list_fill(Int32(BENCH_LIST_RANDOM.rawValue), &perm, n, seed)
    return perm.map(Int.init)
}

/// A `ModelProcess` with `n` files opened through the Swift API.
final class SwiftFixture: @unchecked Sendable {
    let process: ModelProcess
    let fds: [Int32]
    /// The same process's thread, for calling the C core on the very same
    /// table (ModelProcess's KernelAccess SPI).
    let td: UnsafeMutablePointer<thread>

    init(size: Size, list: List) throws {
        let process = try ModelProcess()
        for _ in 0..<size.n { _ = try process.open() }
        // Install a permuted copy: descriptor i then holds a file
        // allocated at a random place among the others.
        let perm = permutation(size.n, seed: tableSeed).map { Int32($0) }
        process.install(try process.remap(perm))
        let td = process.kernelThread.assumingMemoryBound(to: thread.self)
        precondition(td.pointee.td_proc.pointee.p_fd.pointee.fd_lastfile == Int32(size.n - 1))
        self.process = process
        self.td = td
        fds = list.descriptors(n: size.n)
    }
}

nonisolated(unsafe) var cFixture: CFixture?
nonisolated(unsafe) var arrayFixture: ArrayFixture?
nonisolated(unsafe) var swiftFixture: SwiftFixture?

/// The C fixture's table, adopted by a `ModelProcess`: the Swift
/// module's exec and the C core's, on one table whose files have the
/// benchmarks' C activator (so neither pays for more than the exec).
final class SwiftExecFixture: @unchecked Sendable {
    let process: ModelProcess
    let td: UnsafeMutablePointer<thread>
    let fds: [Int32]

    init(size: Size, list: List) {
        guard let td = bench_proc_build(size.n, 1, tableSeed) else {
            fatalError("cannot build a table of \(size.n) files")
        }
        self.td = td
        process = ModelProcess(adopting: UnsafeMutableRawPointer(td))
        fds = list.descriptors(n: size.n)
    }
}

nonisolated(unsafe) var swiftExecFixture: SwiftExecFixture?

// MARK: The benchmarks

/// The implementations, each one iteration over its fixture.
enum Implementation: String, CaseIterable {
    /// Our fdcopy_remapped + fdescfree_remapped, called from C.
    case ours
    /// proc_exec that succeeds: copy-in, remap, activator, install and
    /// the release of the old table. The table is not shared, so the
    /// exec moves its references.
    case exec
    /// The same, the first call of a process whose table was built and
    /// then left idle for 3 s (one iteration, no warm-up; 1M only).
    case execFirst = "exec.first"
    /// ModelProcess.exec; each iteration also times the C core's
    /// proc_exec on the same table, in alternating order.
    case swiftExec = "swift.exec"
    /// FreeBSD 11's loop, given the core's allocator (superpages), over
    /// its own table of the same files (48-byte slots).
    case freebsd
    /// FreeBSD 11's exec table work: copy-in, its loop, the release of
    /// the old table (a reference dropped per slot).
    case freebsdExec = "freebsd.exec"
    /// FreeBSD 11's loop with plain calloc(3).
    case freebsdMalloc = "freebsd.malloc"
    /// old[fds[i]] into warm memory, no checks, no counting.
    case gather
    /// Only the atomic increment (copy) and decrement (free) of each
    /// entry's file: the floor of reference counting.
    case refcount
    /// fds.map { table[$0] } over an array of class references.
    case swiftArray = "swift.array"
    /// ModelProcess.remap and dropping the result; each iteration also
    /// times the C core on the same table, in alternating order.
    case swiftModule = "swift.module"

    /// Which lists it runs with.
    func runs(_ list: List) -> Bool {
        switch self {
        case .freebsdMalloc: list == .random
        case .execFirst: list == .random || list == .identity
        // An exec replaces the table: with the half list the next
        // iteration's list would name descriptors the table lost.
        case .exec, .swiftExec, .freebsdExec: list != .half
        default: true
        }
    }
}

func register(_ impl: Implementation, _ list: List, _ size: Size) {
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .peakMemoryResident,
                  .timePerEntry, .copyPerEntry, .freePerEntry,
                  .entriesPerSecond, .tableBytes],
        timeUnits: .microseconds,
        warmupIterations: size.warmup,
        maxDuration: size.maxDuration,
        maxIterations: size.maxIterations)
    let name = "Remap.\(size.label).\(list.rawValue).\(impl.rawValue)"
    switch impl {
    case .ours, .exec, .freebsd, .freebsdExec, .freebsdMalloc, .gather, .refcount:
        let alloc: Int32? = switch impl {
        case .freebsd, .freebsdExec: FREEBSD_ALLOC_FDR
        case .freebsdMalloc: FREEBSD_ALLOC_LIBC
        default: nil
        }
        Benchmark(name, configuration: config) { benchmark in
            runC(impl, cFixture!, benchmark)
        } setup: {
            cFixture = CFixture(size: size, list: list, freebsd: alloc)
        } teardown: {
            cFixture = nil
        }
    case .execFirst:
        var once = config
        once.warmupIterations = 0
        once.maxIterations = 1
        Benchmark(name, configuration: once) { benchmark in
            runC(.exec, cFixture!, benchmark)
        } setup: {
            cFixture = CFixture(size: size, list: list)
            sleep(3)
        } teardown: {
            cFixture = nil
        }
    case .swiftExec:
        var paired = config
        paired.metrics.removeAll { $0 == .wallClock || $0 == .throughput }
        paired.metrics += [.cCorePerEntry, .swiftOverC]
        Benchmark(name, configuration: paired) { benchmark in
            let f = swiftExecFixture!
            let n = UInt64(max(f.fds.count, 1))
            var swift: UInt64 = 0, c: UInt64 = 0
            if benchmark.currentIteration % 2 == 0 {
                swift = try execSwift(f)
                c = execC(f.td, f.fds)
            } else {
                c = execC(f.td, f.fds)
                swift = try execSwift(f)
            }
            record(benchmark, n: f.fds.count, copy: swift, free: 0)
            benchmark.measurement(.cCorePerEntry, Int(c * 1000 / n))
            benchmark.measurement(.swiftOverC, Int(swift * 1000 / max(c, 1)))
        } setup: {
            swiftExecFixture = SwiftExecFixture(size: size, list: list)
        } teardown: {
            swiftExecFixture = nil
        }
    case .swiftArray:
        Benchmark(name, configuration: config) { benchmark in
            let f = arrayFixture!
            let t0 = bench_now_ns()
            var remapped: [OpenFile]? = f.fds.map { f.table[Int($0)] }
            let t1 = bench_now_ns()
            // The array's buffer: a 32-byte header and one reference a slot.
            let bytes = 32 + remapped!.capacity * MemoryLayout<OpenFile>.stride
            blackHole(remapped!.count)
            remapped = nil
            let t2 = bench_now_ns()
            record(benchmark, n: f.fds.count, copy: t1 - t0, free: t2 - t1, bytes: bytes)
        } setup: {
            arrayFixture = ArrayFixture(size: size, list: list)
        } teardown: {
            arrayFixture = nil
        }
    case .swiftModule:
        var paired = config
        // Its iterations time the Swift path and the C core both, so the
        // wall clock is not the Swift path's: see the custom metrics.
        paired.metrics.removeAll { $0 == .wallClock || $0 == .throughput }
        paired.metrics += [.cCorePerEntry, .swiftOverC]
        Benchmark(name, configuration: paired) { benchmark in
            let f = swiftFixture!
            let n = UInt64(max(f.fds.count, 1))
            var swift: (UInt64, UInt64) = (0, 0)
            var c: UInt64 = 0
            if benchmark.currentIteration % 2 == 0 {
                swift = try remapSwift(f)
                c = remapC(f.td.pointee.td_proc.pointee.p_fd, f.fds)
            } else {
                c = remapC(f.td.pointee.td_proc.pointee.p_fd, f.fds)
                swift = try remapSwift(f)
            }
            record(benchmark, n: f.fds.count, copy: swift.0, free: swift.1)
            benchmark.measurement(.cCorePerEntry, Int(c * 1000 / n))
            benchmark.measurement(.swiftOverC, Int((swift.0 + swift.1) * 1000 / max(c, 1)))
        } setup: {
            swiftFixture = try SwiftFixture(size: size, list: list)
        } teardown: {
            swiftFixture = nil
        }
    }
}

/// ModelProcess.remap and dropping its result: (copy, free) nanoseconds.
func remapSwift(_ f: SwiftFixture) throws -> (UInt64, UInt64) {
    let t0 = bench_now_ns()
    var table: RemappedTable? = try f.process.remap(f.fds)
    let t1 = bench_now_ns()
    blackHole(table!.count)
    table = nil
    let t2 = bench_now_ns()
    return (t1 - t0, t2 - t1)
}

/// ModelProcess.exec of descriptor 0 (every file has the C activator).
func execSwift(_ f: SwiftExecFixture) throws -> UInt64 {
    let t0 = bench_now_ns()
    try f.process.exec(0, fds: f.fds)
    return bench_now_ns() - t0
}

/// proc_exec from C on the same table: nanoseconds.
func execC(_ td: UnsafeMutablePointer<thread>, _ fds: [Int32]) -> UInt64 {
    fds.withUnsafeBufferPointer { list in
        let t0 = bench_now_ns()
        let error = proc_exec(td, 0, nil, 0, list.baseAddress, list.count)
        let t1 = bench_now_ns()
        guard error == 0 else { fatalError("proc_exec: \(error)") }
        return t1 - t0
    }
}

/// fdcopy_remapped + fdescfree_remapped: nanoseconds, both together.
func remapC(_ fdp: UnsafeMutablePointer<filedesc>, _ fds: [Int32]) -> UInt64 {
    fds.withUnsafeBufferPointer { list in
        var newfdp: UnsafeMutablePointer<filedesc>?
        let t0 = bench_now_ns()
        let error = fdcopy_remapped(fdp, list.baseAddress, list.count, &newfdp)
        guard error == 0, let newfdp else { fatalError("fdcopy_remapped: \(error)") }
        fdescfree_remapped(newfdp)
        return bench_now_ns() - t0
    }
}

/// fdcopy_remapped + fdescfree_remapped, timed apart.
func remapOurs(_ fdp: UnsafeMutablePointer<filedesc>, _ fds: [Int32], _ benchmark: Benchmark) {
    fds.withUnsafeBufferPointer { list in
        var newfdp: UnsafeMutablePointer<filedesc>?
        let t0 = bench_now_ns()
        let error = fdcopy_remapped(fdp, list.baseAddress, list.count, &newfdp)
        let t1 = bench_now_ns()
        guard error == 0, let newfdp else { fatalError("fdcopy_remapped: \(error)") }
        let bytes = bench_table_bytes(newfdp)
        fdescfree_remapped(newfdp)
        let t2 = bench_now_ns()
        record(benchmark, n: list.count, copy: t1 - t0, free: t2 - t1, bytes: bytes)
    }
}

func runC(_ impl: Implementation, _ f: CFixture, _ benchmark: Benchmark) {
    let fdp = f.fdp
    f.fds.withUnsafeBufferPointer { list in
        let n = list.count
        switch impl {
        case .ours:
            remapOurs(fdp, f.fds, benchmark)
        case .exec:
            let t0 = bench_now_ns()
            let error = proc_exec(f.td, 0, nil, 0, list.baseAddress, n)
            let t1 = bench_now_ns()
            guard error == 0 else { fatalError("proc_exec: \(error)") }
            record(benchmark, n: n, copy: t1 - t0, free: 0, bytes: bench_table_bytes(f.fdp))
        case .freebsd, .freebsdMalloc:
            var newfdp: UnsafeMutablePointer<freebsd_filedesc>?
            let t0 = bench_now_ns()
            let error = freebsd_fdcopy_remapped(f.bsd, list.baseAddress, n, &newfdp, f.bsdAlloc)
            let t1 = bench_now_ns()
            guard error == 0, let newfdp else { fatalError("freebsd_fdcopy_remapped: \(error)") }
            let bytes = freebsd_table_bytes(newfdp)
            freebsd_fdescfree_remapped(newfdp, f.bsdAlloc)
            let t2 = bench_now_ns()
            record(benchmark, n: n, copy: t1 - t0, free: t2 - t1, bytes: bytes)
        case .freebsdExec:
            let t0 = bench_now_ns()
            let error = freebsd_exec_tables(&f.bsd, list.baseAddress, n, f.bsdAlloc)
            let t1 = bench_now_ns()
            guard error == 0 else { fatalError("freebsd_exec_tables: \(error)") }
            record(benchmark, n: n, copy: t1 - t0, free: 0, bytes: freebsd_table_bytes(f.bsd))
        case .gather:
            let t0 = bench_now_ns()
            bench_gather(f.dst, fdp.pointee.fd_ofiles, list.baseAddress, n)
            let t1 = bench_now_ns()
            record(benchmark, n: n, copy: t1 - t0, free: 0)
        case .refcount:
            let t0 = bench_now_ns()
            bench_refcount_hold(fdp.pointee.fd_ofiles, list.baseAddress, n)
            let t1 = bench_now_ns()
            bench_refcount_drop(fdp.pointee.fd_ofiles, list.baseAddress, n)
            let t2 = bench_now_ns()
            record(benchmark, n: n, copy: t1 - t0, free: t2 - t1)
        default:
            fatalError("not a C implementation: \(impl)")
        }
    }
}

/// memcpy of the whole old table into warm memory: the machine's limit.
func registerMemcpy(_ size: Size) {
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .peakMemoryResident,
                  .timePerEntry, .copyPerEntry, .entriesPerSecond],
        timeUnits: .microseconds,
        warmupIterations: size.warmup,
        maxDuration: size.maxDuration,
        maxIterations: size.maxIterations)
    Benchmark("Remap.\(size.label).all.memcpy", configuration: config) { benchmark in
        let f = cFixture!
        let t0 = bench_now_ns()
        bench_memcpy(f.dst, f.fdp.pointee.fd_ofiles, size.n)
        let t1 = bench_now_ns()
        record(benchmark, n: size.n, copy: t1 - t0, free: 0)
    } setup: {
        cFixture = CFixture(size: size, list: .identity)
    } teardown: {
        cFixture = nil
    }
}

extension BenchmarkMetric {
    static let copyRate = BenchmarkMetric.custom(
        "memcpy of 48 MiB (MB/s)", polarity: .prefersLarger, useScalingFactor: false)
    static let lineLatency = BenchmarkMetric.custom(
        "random line dependent (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let lineRandom = BenchmarkMetric.custom(
        "random line independent (ps)", polarity: .prefersSmaller, useScalingFactor: false)
    static let systemCall = BenchmarkMetric.custom(
        "system call (ps)", polarity: .prefersSmaller, useScalingFactor: false)
}

/// The machine's calibration, measured in the same run as the results.
func registerCalibration() {
    let config = Benchmark.Configuration(
        metrics: [.copyRate, .lineLatency, .lineRandom, .systemCall],
        warmupIterations: 0, maxDuration: .seconds(20), maxIterations: 3)
    Benchmark("Machine.calibration", configuration: config) { benchmark in
        benchmark.measurement(.copyRate, Int(bench_calibrate_copy_gbps() * 1000))
        benchmark.measurement(.lineLatency, Int(bench_calibrate_line_ns() * 1000))
        benchmark.measurement(.lineRandom, Int(bench_calibrate_random_line_ns() * 1000))
        benchmark.measurement(.systemCall, Int(bench_calibrate_syscall_ns() * 1000))
    }
}

let benchmarks: @Sendable () -> Void = {
    registerCalibration()
    for size in Size.all {
        registerMemcpy(size)
        for list in List.allCases {
            for impl in Implementation.allCases where impl.runs(list) {
                if impl == .execFirst && size.label != "1M" { continue }
                register(impl, list, size)
            }
        }
    }
}
