import CFDRemapTestHooks
import Testing
import FDRemapTestSupport
import Synchronization
import SystemPackage
import CFDRemapKernel
@testable import FDRemap
#if canImport(Glibc)
import Glibc
#endif

/// Counts the files a test opens and closes, so that a test can check
/// that every file closed exactly once, and when.
final class FileTracker: Sendable {
    private let opened = Atomic<Int>(0)
    private let closed = Atomic<Int>(0)

    var openCount: Int { opened.load(ordering: .relaxed) }
    var closeCount: Int { closed.load(ordering: .relaxed) }
    var liveCount: Int { openCount - closeCount }

    /// Opens a tracked file in `p`.
    @discardableResult
    func open(
        _ p: borrowing ModelProcess, _ payload: any Sendable = (),
        at slot: Int32? = nil,
        access: FileAccess = .read, passable: Bool = true,
        closeOnExec: Bool = false, capabilities: Capabilities = .all,
        imageActivator: ImageActivator? = nil
    ) throws(Errno) -> Int32 {
        opened.add(1, ordering: .relaxed)
        return try p.open(
            payload, at: slot, access: access, passable: passable,
            closeOnExec: closeOnExec, capabilities: capabilities,
            imageActivator: imageActivator,
            onClose: { [self] in closed.add(1, ordering: .relaxed) })
    }
}

/// Makes the k-th allocation of `body` fail, for k = 1, 2, … until a run
/// allocates fewer than k times: every failing run must throw `ENOMEM`,
/// the last must succeed. `check` runs after each run with its k, whether
/// an allocation failed, and the bytes the run left in use on this
/// thread. Returns the k of the run that succeeded.
@discardableResult
func walkAllocationFailures(
    _ body: () throws -> Void,
    check: (_ k: UInt64, _ failed: Bool, _ grown: Int64) -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) -> UInt64 {
    var k: UInt64 = 1
    while true {
        let mem = fdr_mem_inuse_thread()
        fdr_fail_arm(FDR_FAIL_MALLOC, k)
        let result = errnoOf(body)
        let failed = fdr_fail_fired(FDR_FAIL_MALLOC) != 0
        fdr_fail_arm(FDR_FAIL_MALLOC, 0)
        check(k, failed, fdr_mem_inuse_thread() - mem)
        guard failed else {
            #expect(result == nil, "the run with nothing failing", sourceLocation: sourceLocation)
            return k
        }
        #expect(result == .noMemory, "allocation \(k)", sourceLocation: sourceLocation)
        k += 1
    }
}

/// Records the core's memory in use on this thread; `verify` checks it
/// came back and that every tracked file closed. Tests using it are
/// synchronous, so they stay on one thread.
struct LeakCheck {
    let start = fdr_mem_inuse_thread()

    func verify(_ tracker: FileTracker? = nil,
                sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(fdr_mem_inuse_thread() == start,
                "core memory leaked", sourceLocation: sourceLocation)
        if let tracker {
            #expect(tracker.liveCount == 0,
                    "files left open", sourceLocation: sourceLocation)
        }
    }
}

/// Every file's reference count equals the number of slots holding it in
/// `tables` plus `extra[file]`: the references are balanced.
func expectBalanced(_ tables: [DescriptorTable], extra: [FileID: Int] = [:],
                    sourceLocation: SourceLocation = #_sourceLocation) {
    var holders = extra
    var counts: [FileID: Int] = [:]
    for t in tables {
        for case let e? in t.slots {
            holders[e.file, default: 0] += 1
            counts[e.file] = e.referenceCount
        }
    }
    for (file, count) in counts {
        #expect(count == holders[file],
                "\(file): \(count) references, \(holders[file] ?? 0) holders",
                sourceLocation: sourceLocation)
    }
}

/// The table invariants of the core (`fdcheck`), 0 when they hold.
func brokenInvariant(_ p: borrowing ModelProcess) -> Int32 {
    fdcheck(p.fdp)
}

/// Memory that reads fault: one readable page followed by a PROT_NONE
/// page, and a separately unmapped page. Unmapped on deinit.
final class HostileMemory {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let base: UnsafeMutableRawPointer
    let unmapped: UnsafeMutableRawPointer

    init() {
        base = mmap(nil, 2 * page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mprotect(base + page, page, PROT_NONE)
        let u = mmap(nil, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        munmap(u, page)
        unmapped = u
    }

    deinit {
        munmap(base, 2 * page)
    }

    /// The PROT_NONE page.
    var protNone: UnsafeRawPointer { UnsafeRawPointer(base + page) }
    /// `n` readable bytes that end exactly where the PROT_NONE page starts.
    func readableEnd(_ n: Int) -> UnsafeMutableRawPointer { base + page - n }
}

/// The `Errno` that `body` throws, or nil when it succeeds. Any other
/// error is a test failure.
func errnoOf(_ body: () throws -> Void,
             sourceLocation: SourceLocation = #_sourceLocation) -> Errno? {
    do {
        try body()
        return nil
    } catch let error as Errno {
        return error
    } catch {
        Issue.record("not an Errno: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
