import CFDRemapTestHooks
import Testing
import SystemPackage
import CFDRemapKernel
@testable import FDRemap

/// fdcopy_remapped, fdescfree_remapped and fdinstall_remapped: one test
/// per rule of kernel.md.
@Suite struct RemapTests {
    let files = FileTracker()

    /// A process with `n` passable files at 0..<n.
    func process(files n: Int) throws -> ModelProcess {
        let p = try ModelProcess()
        for i in 0..<n { #expect(try files.open(p, i) == Int32(i)) }
        return p
    }

    /// Calls fdcopy_remapped directly; the returned table must be freed.
    func copy(_ p: borrowing ModelProcess, _ fds: [Int32],
              ret: inout UnsafeMutablePointer<filedesc>?) -> Int32 {
        fds.withUnsafeBufferPointer {
            fdcopy_remapped(p.fdp, $0.baseAddress, $0.count, &ret)
        }
    }

    @Test func moreDescriptorsThanLastFilePlusOneIsE2BIG() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            #expect(errnoOf { _ = try p.remap([0, 1, 2, 0]) } == .argListTooLong)
            // The bound is fd_lastfile + 1 even with holes below it.
            try p.close(0)
            #expect(errnoOf { _ = try p.remap([1, 2, 1, 2]) } == .argListTooLong)
            #expect(try p.remap([1, 2, 1]).count == 3)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func anEmptyTableAcceptsOnlyAnEmptyList() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            #expect(errnoOf { _ = try p.remap([0]) } == .argListTooLong)
            let t = try p.remap([])
            #expect(t.count == 0)
            #expect(t.table.lastFile == -1 && t.table.freeFile == 0)
        }
        leaks.verify(files)
    }

    @Test func e2bigIsCheckedBeforeAnyEntryOrAllocation() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            fdr_fail_arm(FDR_FAIL_MALLOC, .max)   // count, never fail
            defer { fdr_fail_arm(FDR_FAIL_MALLOC, 0) }
            // Bad entries too: E2BIG still wins, and nothing is allocated.
            #expect(errnoOf { _ = try p.remap([-1, 7, 0]) } == .argListTooLong)
            #expect(fdr_fail_calls(FDR_FAIL_MALLOC) == 0)
        }
        leaks.verify(files)
    }

    @Test func aNegativeDescriptorIsEBADF() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            #expect(errnoOf { _ = try p.remap([0, -1]) } == .badFileDescriptor)
            #expect(errnoOf { _ = try p.remap([Int32.min]) } == .badFileDescriptor)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func aDescriptorAboveLastFileIsEBADFEvenWithinCapacity() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            #expect(p.table.capacity >= 64)
            #expect(errnoOf { _ = try p.remap([3]) } == .badFileDescriptor)
            #expect(errnoOf { _ = try p.remap([63]) } == .badFileDescriptor)
            #expect(errnoOf { _ = try p.remap([Int32.max]) } == .badFileDescriptor)
        }
        leaks.verify(files)
    }

    @Test func anEmptySlotIsEBADF() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            try p.close(1)
            #expect(errnoOf { _ = try p.remap([0, 1]) } == .badFileDescriptor)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func aFileThatIsNotPassableIsEINVAL() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let kq = try files.open(p, "kqueue", passable: false)
            #expect(errnoOf { _ = try p.remap([0, kq]) } == .invalidArgument)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func anUninitialisedFileIsNotPassable() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            var fp: UnsafeMutablePointer<file>?
            #expect(falloc_noinstall(p.td, &fp) == 0)
            var fd: Int32 = -1
            #expect(finstall(p.td, fp, &fd, 0, nil) == 0)
            _ = fdrop(fp, p.td)
            #expect(errnoOf { _ = try p.remap([fd]) } == .invalidArgument)
        }
        leaks.verify()
    }

    @Test(arguments: [
        // (list, expected): the first bad index decides.
        ([0, 9, -1], Errno.invalidArgument),   // 9 is the kqueue
        ([0, -1, 9], Errno.badFileDescriptor),
        ([0, 5, 9], Errno.badFileDescriptor),  // 5 is a hole
        ([9, 5], Errno.invalidArgument),
        ([0, 1, 2, 3, 4, 6, 7, 8, 10, 9], Errno.badFileDescriptor),
    ] as [([Int32], Errno)])
    func theFirstBadEntryDecidesTheError(fds: [Int32], expected: Errno) throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 9)
            #expect(try files.open(p, passable: false) == 9)
            try p.close(5)
            #expect(p.table.lastFile == 9)
            #expect(errnoOf { _ = try p.remap(fds) } == expected)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func onErrorNoReferenceIsLeftAndRetIsNotWritten() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 8)
            let before = p.table
            let sentinel = UnsafeMutablePointer<filedesc>(bitPattern: 0x5EED)
            // [4, 4, 4, -1]: the error ends a run of one file whose references
            // are taken together; they must be given back too.
            for fds: [Int32] in [[0, 1, 2, 3, -1], [7, 6, 5, 8], [4, 4, 4, -1],
                                 [0, 0, 0, 0, 0, 0, 0, 0, 0]] {
                var ret = sentinel
                #expect(copy(p, fds, ret: &ret) != 0)
                #expect(ret == sentinel)
                #expect(p.table == before)
            }
        }
        leaks.verify(files)
    }

    @Test func eachCopyTakesOneReference() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 4)
            let t = try p.remap([3, 1])
            #expect(t.table[0]?.file == p.table[3]?.file)
            #expect(t.table[1]?.file == p.table[1]?.file)
            #expect(p.table[3]?.referenceCount == 2)
            #expect(p.table[0]?.referenceCount == 1)
            expectBalanced([p.table, t.table])
        }
        leaks.verify(files)
    }

    @Test func theSameDescriptorMayAppearManyTimes() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 5)
            let t = try p.remap([2, 2, 2, 0, 2])
            #expect(t.table.slots.map { $0?.file } == [2, 2, 2, 0, 2].map { p.table[$0]?.file })
            #expect(p.table[2]?.referenceCount == 1 + 4)
            expectBalanced([p.table, t.table])
        }
        leaks.verify(files)
    }

    @Test func closeOnExecIsCopiedUnchanged() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let a = try files.open(p, closeOnExec: true)
            let b = try files.open(p, closeOnExec: false)
            #expect(try p.remap([a, b]).table.slots.map { $0?.closeOnExec } == [true, false])
            #expect(try p.remap([b, a]).table.slots.map { $0?.closeOnExec } == [false, true])
            #expect(try p.remap([a, a]).table.slots.map { $0?.closeOnExec } == [true, true])
        }
        leaks.verify(files)
    }

    @Test func capabilitiesAreSharedImmutableAndReferenceCounted() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let caps = Capabilities(rights: (0x1234, 0x8000_0000_0000_0001),
                                    ioctls: [0x5401, 0x5402, 0x541B], fcntls: 0x5)
            let fd = try files.open(p, capabilities: caps)
            let none = try files.open(p, capabilities: Capabilities(rights: (1, 2), ioctls: [], fcntls: 0))
            let all = try files.open(p)
            let t = try p.remap([fd, none, fd])
            #expect(t.table[0]?.capabilities == caps)
            #expect(t.table[2]?.capabilities == caps)
            #expect(t.table[1]?.capabilities.ioctls == [])
            // All rights cost no allocation; others are one object that
            // every copy shares, with a reference per slot holding it.
            #expect(p.fdp.pointee.fd_ofiles[Int(all)].fde_caps == nil)
            let shared = p.fdp.pointee.fd_ofiles[Int(fd)].fde_caps
            #expect(shared != nil)
            let held = { fdcaps_count(shared!) }
            #expect(held() == 3)    // the old slot and t's two
            var ret: UnsafeMutablePointer<filedesc>?
            #expect(copy(p, [fd, fd], ret: &ret) == 0)
            #expect(ret!.pointee.fd_ofiles[0].fde_caps == shared)
            #expect(ret!.pointee.fd_ofiles[1].fde_caps == shared)
            #expect(held() == 5)
            // Freeing the copy leaves the original intact, and vice versa.
            fdescfree_remapped(ret)
            #expect(held() == 3)
            #expect(p.table[fd]?.capabilities == caps)
            let t2 = try p.remap([fd])
            try p.close(fd)
            #expect(t2.table[0]?.capabilities == caps)
            #expect(fdcheck(p.fdp) == 0)
        }
        leaks.verify(files)
    }

    @Test func successFillsSlotsLastFileFreeFileUmaskAndRefcount() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 70)
            p.fdp.pointee.fd_cmask = 0o027
            let fds = (0..<70).reversed().map(Int32.init)
            var ret: UnsafeMutablePointer<filedesc>?
            #expect(copy(p, fds, ret: &ret) == 0)
            let t = ret!.pointee
            #expect(t.fd_lastfile == 69)
            #expect(t.fd_freefile == 70)
            #expect(t.fd_cmask == 0o027)
            #expect(t.fd_refcnt == 1)
            #expect(t.fd_nfiles == 128)
            #expect(t.fd_map[0] == ~0 && t.fd_map[1] == 0x3F)
            #expect(fdcheck(ret) == 0)
            fdescfree_remapped(ret)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func fdescfreeRemappedDropsReferencesAndClosesLastOnes() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let t = try p.remap([0, 2, 2])
            try p.close(2)                    // the remapped table holds the last
            #expect(files.closeCount == 0)
            _ = consume t                      // fdescfree_remapped
            #expect(files.closeCount == 1)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func installReleasesAnUnsharedOldTable() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 4)
            let t = try p.remap([3, 1])
            p.install(t)
            #expect(files.closeCount == 2)     // 0 and 2 went with the old table
            #expect(p.table.slots.count == 2)
            #expect(p.table.slots.allSatisfy { $0?.referenceCount == 1 })
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func installOnASharedTableDropsOnlyThisProcess() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 4)
            let q = try p.fork(sharingTable: true)
            let before = q.table
            let t = try p.remap([2])
            p.install(t)
            #expect(files.closeCount == 0)
            // q still sees the whole old table; file 2 has one more holder.
            #expect(q.table.openDescriptors == before.openDescriptors)
            #expect(q.table[2]?.referenceCount == 2)
            expectBalanced([p.table, q.table])
            #expect(q.fdp.pointee.fd_refcnt == 1)
        }
        leaks.verify(files)
    }

    @Test func remapRunsOutOfMemoryCleanlyAtEveryAllocation() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            for i in 0..<100 {
                try files.open(p, capabilities: Capabilities(
                    rights: (1, 1), ioctls: i % 3 == 0 ? [UInt(i)] : nil, fcntls: 0))
            }
            let fds = (0..<100).map { Int32(($0 * 37) % 100) }
            let before = p.table
            let k = walkAllocationFailures({ _ = try p.remap(fds) }) { k, _, grown in
                #expect(grown == 0, "allocation \(k)")
                #expect(p.table == before, "allocation \(k)")
            }
            // The table, its slots, its bitmap, and nothing per entry:
            // capabilities are shared, not copied. The walk ends at the
            // first k that does not fire.
            #expect(k == 3 + 1)
        }
        leaks.verify(files)
    }
}
