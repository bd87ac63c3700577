import Testing
import FDRemapTestSupport
import Synchronization
import SystemPackage
import CFDRemapKernel
@testable import FDRemap
#if canImport(Glibc)
import Glibc
#endif

/// A process that threads share by reference.
final class SharedProcess: Sendable {
    let p: ModelProcess
    init(_ p: consuming ModelProcess) { self.p = p }
}

/// Runs `bodies` on threads of their own, all at once, and joins them.
func runThreads(_ bodies: [@Sendable () -> Void]) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var threads: [pthread_t] = []
    for body in bodies {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create: \(rc)")
        threads.append(t)
    }
    for t in threads { pthread_join(t, nil) }
}

/// fdcopy_remapped reads under the shared lock while other threads open,
/// close and duplicate descriptors in the same table, and others exec
/// through it.
@Suite struct ConcurrencyTests {
    /// A descriptor list: mostly the stable slots, some churning ones.
    static func randomList(_ n: Int, _ rng: inout SplitMix64) -> [Int32] {
        (0..<n).map { _ in
            Int.random(in: 0..<8, using: &rng) == 0
                ? Int32.random(in: 32..<100, using: &rng) : Int32.random(in: 0..<32, using: &rng)
        }
    }

    @Test func remapAndExecWhileOthersChangeTheTable() throws {
        let files = FileTracker()
        let rounds = 20_000
        let remaps = Atomic<Int>(0)
        let execs = Atomic<Int>(0)
        do {
            let base = SharedProcess(try ModelProcess())
            let succeed: ImageActivator = { _ throws(Errno) in }
            for i in 0..<64 {
                let caps = i % 5 == 0
                    ? Capabilities(rights: (1, 2), ioctls: [UInt(i)], fcntls: 3) : .all
                try files.open(base.p, i, access: i % 4 == 0 ? .exec : .read,
                               passable: i % 9 != 8, closeOnExec: i % 2 == 0,
                               capabilities: caps,
                               imageActivator: i % 4 == 0 ? succeed : nil)
            }
            let mutator: @Sendable (UInt64) -> Void = { seed in
                var rng = SplitMix64(seed: seed)
                let me = try! base.p.fork(sharingTable: true)
                for _ in 0..<rounds {
                    // Slots 0..<32 stay put, so that remaps and execs of
                    // them can succeed; 32..<100 churn.
                    let fd = Int32.random(in: 32..<100, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0:
                        // The lowest free slot is above 31 while 0..<32 stay.
                        _ = try? files.open(me, passable: Bool.random(using: &rng))
                    case 1: try? me.close(fd)
                    case 2: _ = try? me.duplicate(fd)
                    default: _ = try? me.duplicate(Int32.random(in: 0..<100, using: &rng),
                                                   as: Int32.random(in: 32..<100, using: &rng))
                    }
                }
            }
            let remapper: @Sendable (UInt64) -> Void = { seed in
                var rng = SplitMix64(seed: seed)
                for _ in 0..<rounds {
                    let fds = Self.randomList(Int.random(in: 0..<40, using: &rng), &rng)
                    if let t = try? base.p.remap(fds) {
                        // Every slot is a real file with a reference of ours.
                        precondition(t.table.slots.allSatisfy { ($0?.referenceCount ?? 0) >= 1 })
                        remaps.add(1, ordering: .relaxed)
                    }
                }
            }
            // Execs on the shared table take references; execs on a
            // forked copy (a table of its own) move the copy's, and
            // release the slots not named while the other threads take
            // and drop references on the same files.
            let execer: @Sendable (UInt64) -> Void = { seed in
                var rng = SplitMix64(seed: seed)
                for round in 0..<rounds / 3 {
                    let child = try! base.p.fork(sharingTable: round % 2 == 0)
                    let fds = Self.randomList(Int.random(in: 0..<10, using: &rng), &rng)
                    if (try? child.exec(Int32.random(in: 0..<8, using: &rng) * 4, fds: fds)) != nil {
                        precondition(child.table.slots.count == fds.count)
                        execs.add(1, ordering: .relaxed)
                    }
                }
            }
            runThreads([
                { mutator(1) }, { mutator(2) }, { remapper(3) }, { remapper(4) }, { execer(5) },
            ])
            #expect(remaps.load(ordering: .relaxed) > 0)
            #expect(execs.load(ordering: .relaxed) > 0)
            #expect(brokenInvariant(base.p) == 0)
            expectBalanced([base.p.table])
            #expect(files.liveCount == Set(base.p.table.slots.compactMap { $0?.file }).count)
        }
        #expect(files.liveCount == 0)
    }

    /// The limit lowered and raised again by one thread while another
    /// opens and closes: every open either fits the limit it read or
    /// fails with EMFILE (ThreadSanitizer in CI sees no race on it).
    @Test func limitChangedWhileOthersOpen() throws {
        let shared = SharedProcess(try ModelProcess())
        let stop = Atomic<Bool>(false)
        let refused = Atomic<Int>(0)
        runThreads([
            {
                var i = 0
                while !stop.load(ordering: .relaxed) {
                    shared.p.descriptorLimit = i % 2 == 0 ? 4 : 1 << 20
                    i += 1
                }
            },
            {
                var fds: [Int32] = []
                // 20,000 opens, and on a loaded machine (where the other
                // thread may seldom run meanwhile) more, until the limit
                // has bitten once or 20 s have passed.
                let deadline = ContinuousClock.now + .seconds(20)
                var opens = 0
                while opens < 20_000 || (refused.load(ordering: .relaxed) == 0
                                         && ContinuousClock.now < deadline) {
                    opens += 1
                    do throws(Errno) {
                        fds.append(try shared.p.open())
                        if fds.count > 8 { try shared.p.close(fds.removeFirst()) }
                    } catch {
                        #expect(error == .tooManyOpenFiles)
                        refused.add(1, ordering: .relaxed)
                    }
                }
                stop.store(true, ordering: .relaxed)
                for fd in fds { try? shared.p.close(fd) }
            },
        ])
        #expect(refused.load(ordering: .relaxed) > 0, "the limit never bit")
        shared.p.descriptorLimit = 1 << 20
        #expect(shared.p.table.slots.allSatisfy { $0 == nil })
    }
}
