import Testing
import SystemPackage
import CFDRemapKernel
@testable import FDRemap
#if canImport(Glibc)
import Glibc
#endif

/// The table operations that build the tables the remap works on.
@Suite struct TableTests {
    let files = FileTracker()

    @Test func finstallTakesTheLowestFreeSlotAndAReference() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            for i in 0..<5 { #expect(try files.open(p) == Int32(i)) }
            try p.close(1)
            try p.close(3)
            #expect(p.table.freeFile == 1)
            #expect(try files.open(p) == 1)
            #expect(try files.open(p) == 3)
            #expect(try files.open(p) == 5)
            #expect(p.table.slots.allSatisfy { $0?.referenceCount == 1 })
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func finstallSetsCloseOnExecFromOCLOEXEC() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            var fp: UnsafeMutablePointer<file>?
            #expect(falloc_noinstall(p.td, &fp) == 0)
            #expect(file_count(fp) == 1)
            var a: Int32 = -1, b: Int32 = -1
            #expect(finstall(p.td, fp, &a, O_CLOEXEC, nil) == 0)
            #expect(finstall(p.td, fp, &b, O_RDONLY, nil) == 0)
            #expect(file_count(fp) == 3)
            _ = fdrop(fp, p.td)
            #expect(p.table[a]?.closeOnExec == true)
            #expect(p.table[b]?.closeOnExec == false)
            #expect(p.table[a]?.capabilities == .all)
        }
        leaks.verify()
    }

    @Test func finstallMovesCapabilitiesAndFreesThemOnError() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            p.descriptorLimit = 1
            let caps = Capabilities(rights: (3, 4), ioctls: [1, 2], fcntls: 9)
            let fd = try files.open(p, capabilities: caps)
            #expect(p.table[fd]?.capabilities == caps)
            // EMFILE: the file closes and its ioctl array is freed.
            #expect(errnoOf { try files.open(p, capabilities: caps) } == .tooManyOpenFiles)
            #expect(files.closeCount == 1)
        }
        leaks.verify(files)
    }

    @Test func theTableGrowsInWholeWordsOfSixtyFourSlots() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            #expect(p.table.capacity == 64)
            for _ in 0..<64 { try files.open(p) }
            #expect(p.table.capacity == 64)
            try files.open(p)
            #expect(p.table.capacity == 128)
            for _ in 0..<200 { try files.open(p) }
            #expect(p.table.capacity % 64 == 0 && p.table.capacity >= 265)
            #expect(try p.duplicate(0, as: 1000) == 1000)
            #expect(p.table.capacity == 1024)
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func theDescriptorLimitIsEMFILE() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            p.descriptorLimit = 3
            for _ in 0..<3 { try files.open(p) }
            #expect(errnoOf { try files.open(p) } == .tooManyOpenFiles)
            #expect(errnoOf { _ = try p.duplicate(0) } == .tooManyOpenFiles)
            #expect(errnoOf { try p.duplicate(0, as: 3) } == .badFileDescriptor)
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func dupTakesTheLowestFreeSlotAndClearsCloseOnExec() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let caps = Capabilities(rights: (1, 2), ioctls: [7], fcntls: 1)
            let a = try files.open(p, closeOnExec: true, capabilities: caps)
            try files.open(p)
            let b = try p.duplicate(a)
            #expect(b == 2)
            #expect(p.table[b]?.file == p.table[a]?.file)
            #expect(p.table[b]?.closeOnExec == false)
            #expect(p.table[b]?.capabilities == caps)
            #expect(try p.table[p.duplicate(a, closeOnExec: true)]?.closeOnExec == true)
            #expect(p.table[a]?.referenceCount == 3)
            // Separate ioctl arrays: closing the original keeps the copy.
            try p.close(a)
            #expect(p.table[b]?.capabilities == caps)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func dup2ClosesTheTargetAndOntoItselfOnlyChecks() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let a = try files.open(p)
            let b = try files.open(p)
            #expect(try p.duplicate(a, as: b) == b)
            #expect(files.closeCount == 1)
            #expect(p.table[b]?.file == p.table[a]?.file)
            #expect(try p.duplicate(a, as: a, closeOnExec: true) == a)
            #expect(p.table[a]?.closeOnExec == true)
            #expect(p.table[a]?.referenceCount == 2)
            #expect(errnoOf { try p.duplicate(7, as: 7) } == .badFileDescriptor)
            #expect(errnoOf { try p.duplicate(-1, as: 2) } == .badFileDescriptor)
            #expect(errnoOf { try p.duplicate(a, as: -1) } == .badFileDescriptor)
            #expect(errnoOf { _ = try p.duplicate(9) } == .badFileDescriptor)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func closeFreesTheSlotAndClosesOnTheLastReference() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            for _ in 0..<4 { try files.open(p) }
            try p.duplicate(3, as: 5)
            try p.close(3)
            #expect(files.closeCount == 0)
            #expect(p.table.lastFile == 5)
            try p.close(5)
            #expect(files.closeCount == 1)
            #expect(p.table.lastFile == 2)
            try p.close(0)
            #expect(p.table.freeFile == 0)
            #expect(errnoOf { try p.close(0) } == .badFileDescriptor)
            #expect(errnoOf { try p.close(-3) } == .badFileDescriptor)
            #expect(errnoOf { try p.close(400) } == .badFileDescriptor)
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func forkCopiesPassableFilesWithTheirFlagsAndCapabilities() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let caps = Capabilities(rights: (5, 6), ioctls: [1, 2, 3], fcntls: 2)
            try files.open(p, closeOnExec: true, capabilities: caps)
            try files.open(p, passable: false)
            try files.open(p)
            p.fdp.pointee.fd_cmask = 0o077
            let q = try p.fork()
            #expect(q.table.openDescriptors == [0, 2])   // no kqueue
            #expect(q.table[0]?.closeOnExec == true)
            #expect(q.table[0]?.capabilities == caps)
            #expect(q.table.umask == 0o077)
            #expect(q.table[0]?.file == p.table[0]?.file)
            expectBalanced([p.table, q.table])
            #expect(brokenInvariant(q) == 0)
        }
        leaks.verify(files)
    }

    @Test func destroyingAProcessClosesWhatOnlyItHeld() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            try files.open(p)
            try files.open(p)
            do {
                let q = try p.fork()
                try files.open(q)
                _ = consume q
            }
            #expect(files.closeCount == 1)
            do {
                let s = try p.fork(sharingTable: true)
                try files.open(s)
                _ = consume s
            }
            #expect(files.closeCount == 1)       // the shared table lives on
            #expect(p.table.openDescriptors == [0, 1, 2])
        }
        leaks.verify(files)
    }

    @Test func theCloseHookRunsExactlyOnceOnTheLastReference() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let fd = try files.open(p, "payload")
            #expect(p.payload(of: fd) as? String == "payload")
            let fp = try #require(p.fdp.pointee.fd_ofiles[Int(fd)].fde_file)
            fhold(fp)
            try p.close(fd)
            #expect(files.closeCount == 0)
            #expect(fdrop(fp, p.td) == 0)
            #expect(files.closeCount == 1)
            #expect(p.payload(of: fd) == nil)
        }
        leaks.verify(files)
    }

    @Test func openRunsOutOfMemoryCleanly() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            for _ in 0..<64 { try files.open(p) }    // the next one grows
            let before = p.table
            let caps = Capabilities(rights: (1, 1), ioctls: [1], fcntls: 0)
            let k = walkAllocationFailures({ try files.open(p, capabilities: caps) }) { k, failed, _ in
                if failed { #expect(p.table == before, "allocation \(k)") }
            }
            // file, ioctl array, shared capabilities, bitmap, slots
            #expect(k == 6)
            #expect(files.liveCount == 65)
            #expect(files.openCount == 65 + 5)
        }
        leaks.verify(files)
    }

    @Test func finstallFixedPutsTheFileInExactlyThatSlot() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let caps = Capabilities(rights: (5, 6), ioctls: [7], fcntls: 8)
            #expect(try files.open(p, at: 5, closeOnExec: true, capabilities: caps) == 5)
            #expect(p.table.openDescriptors == [5])
            #expect(p.table.lastFile == 5 && p.table.freeFile == 0 && p.table.capacity == 64)
            #expect(p.table[5]?.closeOnExec == true && p.table[5]?.capabilities == caps)
            #expect(p.table[5]?.referenceCount == 1)
            // Far above: the table grows to hold it, in whole words.
            #expect(try files.open(p, at: 1000) == 1000)
            #expect(p.table.lastFile == 1000 && p.table.capacity == 1024)
            #expect(p.table[1000]?.capabilities == .all && p.table[1000]?.closeOnExec == false)
            // The lowest free slot is still found below them.
            #expect(try files.open(p) == 0)
            #expect(try files.open(p, at: 1) == 1)
            #expect(p.table.freeFile == 2)
            #expect(try files.open(p) == 2)
            #expect(p.table.openDescriptors == [0, 1, 2, 5, 1000])
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    /// Files made with falloc_noinstall_n and installed together by
    /// finstall_refed_fixed: every refusal comes before any change, with
    /// each reference still the caller's; success moves each reference
    /// into its slot.
    @Test func finstallRefedFixedMovesEachReferenceIntoItsSlotOrNothing() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            try files.open(p, at: 3)
            let before = p.table
            var fps = [UnsafeMutablePointer<file>?](repeating: nil, count: 4)
            #expect(falloc_noinstall_n(p.td, &fps, 4) == 0)
            for (i, fp) in fps.enumerated() {
                finit(fp, UInt32(FREAD), Int16(DTYPE_NONE), nil, i == 1 ? plainOps : passableOps)
            }
            #expect(Set(fps).count == 4)
            func install(_ fds: [Int32]) -> Int32 { finstall_refed_fixed(p.td, &fps, fds, 4) }
            #expect(install([0, 1, 3, 700]) == EBUSY)
            #expect(install([0, 2, 1, 700]) == EBADF)      // not increasing
            #expect(install([0, 1, 1, 700]) == EBADF)      // twice
            #expect(install([-1, 1, 2, 700]) == EBADF)
            p.descriptorLimit = 700
            #expect(install([0, 1, 2, 700]) == EBADF)      // at the limit
            p.descriptorLimit = 1 << 20
            #expect(p.table == before)
            #expect(fps.allSatisfy { file_count($0) == 1 })
            #expect(install([0, 1, 2, 700]) == 0)
            let t = p.table
            #expect(t.openDescriptors == [0, 1, 2, 3, 700])
            #expect(t.capacity == 704 && t.freeFile == 4 && t.lastFile == 700)
            for (i, fd) in [0, 1, 2, 700].enumerated() {
                #expect(t[Int32(fd)]?.file == FileID(fps[i]!))
                #expect(t[Int32(fd)]?.referenceCount == 1)      // moved, not taken
                #expect(t[Int32(fd)]?.capabilities == .all && t[Int32(fd)]?.closeOnExec == false)
            }
            // Passability is cached in the slot: the file at 1 is not.
            #expect(errnoOf { _ = try p.remap([0, 1]) } == .invalidArgument)
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func fallocNoinstallNAndFinstallRefedFixedRunOutOfMemoryCleanly() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            try files.open(p, at: 2)
            let before = p.table
            let td = p.td
            let k = walkAllocationFailures({ () throws(Errno) in
                var fps = [UnsafeMutablePointer<file>?](repeating: nil, count: 3)
                var error = falloc_noinstall_n(td, &fps, 3)
                guard error == 0 else { throw Errno(rawValue: error) }
                for fp in fps { finit(fp, UInt32(FREAD), Int16(DTYPE_NONE), nil, passableOps) }
                error = finstall_refed_fixed(td, &fps, [0, 1, 5000], 3)
                if error != 0 { for fp in fps { _ = fdrop(fp, td) } }
                guard error == 0 else { throw Errno(rawValue: error) }
            }) { k, failed, grown in
                guard failed else { return }
                #expect(p.table == before, "allocation \(k)")
                #expect(grown <= 5056 / 8, "allocation \(k)")
            }
            #expect(k == 4)    // the files (one allocation), bitmap, slots
            #expect(p.table.openDescriptors == [0, 1, 2, 5000])
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func finstallFixedRefusesUsedAndBadSlotsLosingNothing() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            p.descriptorLimit = 10
            try files.open(p, at: 3)
            let before = p.table
            let caps = Capabilities(rights: (1, 2), ioctls: [3, 4], fcntls: 5)
            // Each refused file closes and its ioctl array is freed.
            #expect(errnoOf { try files.open(p, at: 3, capabilities: caps) } == .resourceBusy)
            #expect(errnoOf { try files.open(p, at: -1, capabilities: caps) } == .badFileDescriptor)
            #expect(errnoOf { try files.open(p, at: 10, capabilities: caps) } == .badFileDescriptor)
            #expect(errnoOf { try files.open(p, at: .max) } == .badFileDescriptor)
            #expect(p.table == before)
            #expect(files.closeCount == 4 && files.liveCount == 1)
            #expect(try files.open(p, at: 9) == 9)
        }
        leaks.verify(files)
    }

    @Test func finstallFixedRunsOutOfMemoryCleanlyWhenTheTableGrows() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            try files.open(p, at: 2)
            let before = p.table
            let k = walkAllocationFailures({ try files.open(p, at: 5000) }) { k, failed, grown in
                guard failed else { return }
                #expect(p.table == before, "allocation \(k)")
                // At most the bitmap stays larger (5056 slots' bits), kept
                // by the table and freed with it.
                #expect(grown <= 5056 / 8, "allocation \(k)")
            }
            #expect(k == 4)    // file, bitmap, slots
            #expect(p.table.openDescriptors == [2, 5000])
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }
}

/// Plain passable files with nothing to close, for tests that make files
/// with the C core directly.
nonisolated(unsafe) let passableOps: UnsafeMutablePointer<fileops> = {
    let ops = UnsafeMutablePointer<fileops>.allocate(capacity: 1)
    ops.initialize(to: fileops(fo_flags: Int32(DFLAG_PASSABLE), fo_close: nil, fo_exec: nil))
    return ops
}()

/// The same, not passable.
nonisolated(unsafe) let plainOps: UnsafeMutablePointer<fileops> = {
    let ops = UnsafeMutablePointer<fileops>.allocate(capacity: 1)
    ops.initialize(to: fileops(fo_flags: 0, fo_close: nil, fo_exec: nil))
    return ops
}()
