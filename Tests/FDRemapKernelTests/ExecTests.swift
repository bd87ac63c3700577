import CFDRemapTestHooks
import Testing
import Synchronization
import SystemPackage
import CFDRemapKernel
@_spi(KernelAccess) @testable import FDRemap
#if canImport(Glibc)
import Glibc
#endif

/// What a recording image activator saw.
final class ActivatorLog: Sendable {
    private let seen = Mutex<[ImageArguments]>([])
    var calls: [ImageArguments] { seen.withLock { $0 } }

    /// An activator that records its arguments and fails with `error`.
    func activator(failingWith error: Errno? = nil) -> ImageActivator {
        { [self] (args: ImageArguments) throws(Errno) in
            seen.withLock { $0.append(args) }
            if let error { throw error }
        }
    }
}

/// exec_copyin_data_fds and proc_exec: one test per rule of kernel.md.
@Suite struct ExecTests {
    let files = FileTracker()
    let log = ActivatorLog()

    /// A process with `n` passable files at 0..<n.
    func process(files n: Int) throws -> ModelProcess {
        let p = try ModelProcess()
        for i in 0..<n { try files.open(p, i) }
        return p
    }

    /// What exec_copyin_data_fds left in its image_args.
    struct Copied {
        var argc: Int
        var stringSpace: Int
        var length: Int             // endp - begin_argv
        var bytes: [UInt8]          // the buffer, with its final NUL
        var lastFile: Int           // of the new table
    }

    /// exec_copyin_data_fds on raw pointers: its error and, on success,
    /// what it copied; frees what it built.
    func copyin(_ p: borrowing ModelProcess, _ data: UnsafeRawPointer?, _ datalen: Int,
                _ fds: UnsafePointer<Int32>?, _ fdslen: Int) -> (Int32, Copied?) {
        var args = image_args()
        let error = exec_copyin_data_fds(p.td, &args, data, datalen, fds, fdslen)
        defer { exec_free_args(&args) }
        guard error == 0 else { return (error, nil) }
        let length = args.endp - args.begin_argv
        return (0, Copied(
            argc: Int(args.argc), stringSpace: Int(args.stringspace), length: length,
            bytes: Array(UnsafeRawBufferPointer(start: args.begin_argv, count: length)),
            lastFile: Int(args.fdp.pointee.fd_lastfile)))
    }

    func copyin(_ p: borrowing ModelProcess, data: [UInt8], fds: [Int32]) -> (Int32, Copied?) {
        data.withUnsafeBytes { d in
            fds.withUnsafeBufferPointer { f in
                copyin(p, d.baseAddress, d.count, f.baseAddress, f.count)
            }
        }
    }

    // MARK: exec_copyin_data_fds

    @Test func dataOfExecArgMaxIsE2BIGAndOneLessIsAccepted() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            #expect(EXEC_ARG_MAX == 262_144)
            let big = [UInt8](repeating: 0x41, count: Int(EXEC_ARG_MAX))
            #expect(copyin(p, data: big, fds: [0]).0 == E2BIG)
            let (error, copied) = copyin(p, data: Array(big.dropLast()), fds: [0])
            #expect(error == 0)
            #expect(copied?.argc == 1)
            #expect(copied?.stringSpace == 0)
            #expect(copied?.length == Int(EXEC_ARG_MAX))
        }
        leaks.verify(files)
    }

    @Test func tooManyDescriptorsIsE2BIGBeforeAnyAllocation() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            fdr_fail_arm(FDR_FAIL_MALLOC, .max)
            defer { fdr_fail_arm(FDR_FAIL_MALLOC, 0) }
            // A huge length with an unreadable list: neither read nor
            // allocated for.
            #expect(copyin(p, nil, 0, nil, Int.max).0 == E2BIG)
            #expect(copyin(p, nil, 0, nil, 3).0 == E2BIG)
            #expect(fdr_fail_calls(FDR_FAIL_MALLOC) == 0)
        }
        leaks.verify(files)
    }

    @Test func lengthsOfSizeMaxAreE2BIGWithoutReadingOrAllocating() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let sizeMax = Int(bitPattern: UInt.max)
            fdr_fail_arm(FDR_FAIL_MALLOC, .max)
            defer { fdr_fail_arm(FDR_FAIL_MALLOC, 0) }
            #expect(copyin(p, nil, sizeMax, nil, 0).0 == E2BIG)
            #expect(copyin(p, nil, 0, nil, sizeMax).0 == E2BIG)
            var ret: UnsafeMutablePointer<filedesc>?
            #expect(fdcopy_remapped(p.fdp, nil, Int(bitPattern: UInt.max), &ret) == E2BIG)
            #expect(fdr_fail_calls(FDR_FAIL_MALLOC) == 0)
        }
        leaks.verify(files)
    }

    @Test func e2bigComesBeforeEFAULT() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let bad = HostileMemory()
            #expect(copyin(p, bad.protNone, Int(EXEC_ARG_MAX), nil, 0).0 == E2BIG)
            #expect(copyin(p, bad.protNone, 1, bad.protNone.assumingMemoryBound(to: Int32.self), 2).0 == E2BIG)
        }
        leaks.verify(files)
    }

    @Test func emptyDataIsNeverReadAndGivesArgcZero() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let bad = HostileMemory()
            for data in [nil, bad.protNone, UnsafeRawPointer(bad.unmapped)] {
                let (error, copied) = copyin(p, data, 0, nil, 0)
                #expect(error == 0)
                #expect(copied?.argc == 0)
                #expect(copied?.length == 0)
                #expect(copied?.stringSpace == Int(EXEC_ARG_MAX))
            }
        }
        leaks.verify(files)
    }

    @Test(arguments: [
        ("abc", 1), ("a\0b\0", 3), ("\0", 2), ("\0\0\0", 4), ("x\0y", 2),
    ])
    func argcCountsTheNULsIncludingTheAppendedOne(data: String, argc: Int) throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let bytes = Array(data.utf8)
            let (error, copied) = copyin(p, data: bytes, fds: [])
            #expect(error == 0)
            #expect(copied?.argc == argc)
            #expect(copied?.length == bytes.count + 1)
            #expect(copied?.stringSpace == Int(EXEC_ARG_MAX) - bytes.count - 1)
            #expect(copied?.bytes == bytes + [0])
        }
        leaks.verify(files)
    }

    @Test func aNullListOfLengthZeroIsFine() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let (error, copied) = copyin(p, nil, 0, nil, 0)
            #expect(error == 0)
            #expect(copied?.lastFile == -1)
        }
        leaks.verify(files)
    }

    @Test func unreadableDataIsEFAULT() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let bad = HostileMemory()
            #expect(copyin(p, nil, 5, nil, 0).0 == EFAULT)
            #expect(copyin(p, bad.protNone, 5, nil, 0).0 == EFAULT)
            #expect(copyin(p, bad.unmapped, 5, nil, 0).0 == EFAULT)
            // Readable up to the PROT_NONE page, one byte past it.
            #expect(copyin(p, bad.readableEnd(16), 17, nil, 0).0 == EFAULT)
            #expect(copyin(p, bad.readableEnd(16), 16, nil, 0).0 == 0)
        }
        leaks.verify(files)
    }

    @Test func anUnreadableDescriptorListIsEFAULT() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 4)
            let bad = HostileMemory()
            #expect(copyin(p, nil, 0, nil, 1).0 == EFAULT)
            #expect(copyin(p, nil, 0, bad.protNone.assumingMemoryBound(to: Int32.self), 1).0 == EFAULT)
            let end = bad.readableEnd(8).bindMemory(to: Int32.self, capacity: 2)
            end[0] = 0
            end[1] = 1
            #expect(copyin(p, nil, 0, end, 3).0 == EFAULT)
            #expect(copyin(p, nil, 0, end, 2).0 == 0)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test func theCopyInFallbackThroughAPipeGivesTheSameAnswers() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            let bad = HostileMemory()
            fdr_copyin_force_pipe(1)
            defer { fdr_copyin_force_pipe(0) }
            #expect(copyin(p, bad.protNone, 5, nil, 0).0 == EFAULT)
            #expect(copyin(p, bad.readableEnd(16), 17, nil, 0).0 == EFAULT)
            let big = [UInt8]((0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let (error, copied) = copyin(p, data: big, fds: [1, 0])
            #expect(error == 0)
            #expect(copied?.bytes == big + [0])
            #expect(copied?.lastFile == 1)
        }
        leaks.verify(files)
    }

    @Test func dataIsCopiedBeforeTheListAndTheListBeforeTheRemap() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            let bad = HostileMemory()
            // Data EFAULT beats a list EFAULT; a list EFAULT beats EBADF.
            #expect(copyin(p, bad.protNone, 1, bad.protNone.assumingMemoryBound(to: Int32.self), 1).0 == EFAULT)
            let badList: [Int32] = [-1]
            let listResult = badList.withUnsafeBufferPointer {
                copyin(p, bad.protNone, 1, $0.baseAddress, 1).0
            }
            #expect(listResult == EFAULT)
            #expect(copyin(p, data: [1], fds: [-1]).0 == EBADF)
            #expect(copyin(p, data: [1], fds: [0, 1, 0]).0 == E2BIG)
        }
        leaks.verify(files)
    }

    @Test func copyInErrorsLeaveTheTableAndMemoryAsTheyWere() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let before = p.table
            let bad = HostileMemory()
            let mem = fdr_mem_inuse_thread()
            #expect(copyin(p, bad.protNone, 3, nil, 0).0 == EFAULT)
            #expect(copyin(p, data: [1, 2], fds: [0, 5]).0 == EBADF)
            #expect(copyin(p, nil, 0, bad.protNone.assumingMemoryBound(to: Int32.self), 2).0 == EFAULT)
            #expect(fdr_mem_inuse_thread() == mem)
            #expect(p.table == before)
        }
        leaks.verify(files)
    }

    // MARK: proc_exec

    @Test func theExecutableIsLookedUpInTheOldTableAndNeedNotBePassed() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            let exe = try files.open(p, "exe", imageActivator: log.activator())
            try p.exec(exe, data: Array("hello\0world".utf8), fds: [1, 0])
            #expect(log.calls.count == 1)
            let args = try #require(log.calls.first)
            #expect(args.executable == exe)
            #expect(args.data == Array("hello\0world".utf8))
            #expect(args.argc == 2)
            #expect(args.newTable.openDescriptors == [0, 1])
            // The executable was not passed, so it closed with the old table.
            #expect(p.table.slots.count == 2)
            #expect(p.payload(of: 0) as? Int == 1)
            #expect(p.payload(of: 1) as? Int == 0)
            #expect(files.closeCount == 1)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }

    @Test(arguments: [
        (FileAccess.write, true), ([.read, .write], true), ([], true),
        (.read, false), (.exec, false), ([.read, .exec], false),
    ] as [(FileAccess, Bool)])
    func anExecutableOpenForWritingOrNeitherReadNorExecIsEBADF(access: FileAccess, refused: Bool) throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 1)
            let exe = try files.open(p, access: access, imageActivator: log.activator())
            let before = p.table
            let result = errnoOf { try p.exec(exe, fds: [0]) }
            #expect(result == (refused ? .badFileDescriptor : nil))
            if refused {
                #expect(p.table == before)
                #expect(log.calls.isEmpty)
            }
        }
        leaks.verify(files)
    }

    @Test func anExecutableThatIsNotOpenIsEBADF() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            try p.close(1)
            let before = p.table
            for fd: Int32 in [-1, 1, 3, 1000] {
                #expect(errnoOf { try p.exec(fd, fds: [0]) } == .badFileDescriptor)
            }
            #expect(p.table == before)
        }
        leaks.verify(files)
    }

    @Test func aFileWithoutImageActivatorIsEACCES() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            let before = p.table
            #expect(errnoOf { try p.exec(0, fds: [1]) } == .permissionDenied)
            #expect(p.table == before)
        }
        leaks.verify(files)
    }

    @Test func anActivatorErrorKeepsTheOldTableExactly() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 4)
            try p.close(2)
            let exe = try files.open(p, imageActivator: log.activator(failingWith: .execFormatError))
            let before = p.table
            #expect(files.closeCount == 1)             // file 2
            #expect(errnoOf { try p.exec(exe, data: [1, 2, 3], fds: [3, 3, 0]) } == .execFormatError)
            #expect(log.calls.count == 1)
            #expect(p.table == before)
            #expect(files.closeCount == 1)
        }
        leaks.verify(files)
    }

    @Test func copyInErrorsComeBeforeTheExecutableIsLookedUp() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 2)
            #expect(errnoOf { try p.exec(99, fds: [-1]) } == .badFileDescriptor)
            #expect(errnoOf { try p.exec(0, fds: [5]) } == .badFileDescriptor)
            #expect(errnoOf { try p.exec(0, fds: [0, 0, 0]) } == .argListTooLong)
            let kq = try files.open(p, passable: false)
            // EINVAL from the list, not EACCES from the executable.
            #expect(errnoOf { try p.exec(0, fds: [kq]) } == .invalidArgument)
        }
        leaks.verify(files)
    }

    @Test func afterExecTheCountsAreOldMinusOldSlotsPlusOccurrences() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            try p.duplicate(0, as: 5)                  // file 0 in two slots
            let exe = try files.open(p, access: .exec, imageActivator: log.activator())
            let file0 = try #require(p.table[0]?.file)
            #expect(p.table[0]?.referenceCount == 2)
            try p.exec(exe, fds: [0, 2, 0, 0])
            #expect(p.table.slots.map { $0?.file } == [file0, p.table[1]?.file, file0, file0])
            #expect(p.table[0]?.referenceCount == 3)   // 2 - 2 + 3
            #expect(files.closeCount == 2)             // file 1 and the executable
            expectBalanced([p.table])
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func execOnASharedTableLeavesTheOtherProcessItsTable() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let exe = try files.open(p, imageActivator: log.activator())
            let q = try p.fork(sharingTable: true)
            let before = q.table
            try p.exec(exe, fds: [2])
            #expect(q.table.openDescriptors == before.openDescriptors)
            #expect(q.table[2]?.referenceCount == 2)
            #expect(files.closeCount == 0)
            expectBalanced([p.table, q.table])
        }
        leaks.verify(files)
    }

    @Test func closeOnExecIsNotActedUponByExec() throws {
        let leaks = LeakCheck()
        do {
            let p = try ModelProcess()
            let a = try files.open(p, closeOnExec: true)
            let b = try files.open(p, closeOnExec: false)
            let exe = try files.open(p, closeOnExec: true, imageActivator: log.activator())
            try p.exec(exe, fds: [a, b, exe])
            #expect(p.table.slots.map { $0?.closeOnExec } == [true, false, true])
            #expect(files.closeCount == 0)
        }
        leaks.verify(files)
    }

    @Test func execRunsOutOfMemoryCleanlyAtEveryAllocation() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 10)
            let exe = try files.open(p, imageActivator: log.activator())
            let before = p.table
            let k = walkAllocationFailures({
                try p.exec(exe, data: [1, 0, 2], fds: [9, 8, 7, 6, 5])
            }) { k, failed, grown in
                guard failed else { return }
                #expect(grown == 0, "allocation \(k)")
                #expect(p.table == before, "allocation \(k)")
            }
            // Data buffer, descriptor list, table struct, slots, bitmap,
            // and the bitmap of the old slots the new table borrows from
            // (the table is not shared, so exec moves its references).
            #expect(k == 7)
            #expect(p.table.slots.count == 5)
        }
        leaks.verify(files)
    }

    /// The walk above on both of exec's paths (a table another process
    /// shares takes references; one of its own lends them), with a list
    /// that names slots more than once and an activator that fails.
    @Test(arguments: [false, true], [false, true])
    func execOnEitherPathRunsOutOfMemoryCleanly(shared: Bool, activatorFails: Bool) throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 10)
            let exe = try files.open(p, imageActivator: log.activator(
                failingWith: activatorFails ? .execFormatError : nil))
            let sibling = shared ? try p.fork(sharingTable: true) : nil
            let before = p.table
            let fds: [Int32] = [9, 3, 9, 9, 3, exe, 0]
            var outcome: Errno?
            let k = walkAllocationFailures({
                do throws(Errno) {
                    try p.exec(exe, data: [1, 0, 2], fds: fds)
                } catch where error != .noMemory {
                    outcome = error
                }
            }) { k, failed, grown in
                guard failed else { return }
                #expect(grown == 0, "allocation \(k)")
                #expect(p.table == before, "allocation \(k)")
            }
            // Data, list, table, slots, bitmap; an unshared table also the
            // bitmap of the slots it lends.
            #expect(k == (shared ? 6 : 7))
            if activatorFails {
                #expect(outcome == .execFormatError)
                #expect(p.table == before)
            } else {
                #expect(outcome == nil)
                let t = p.table
                #expect(t.slots.count == fds.count)
                for (i, fd) in fds.enumerated() {
                    #expect(t.slots[i]?.file == before.slots[Int(fd)]?.file)
                }
                if sibling == nil { expectBalanced([t]) }
            }
            if let sibling {
                // The sibling keeps the old table; each file's count is
                // the slots holding it in both tables.
                let old = sibling.table
                #expect(old.openDescriptors == before.openDescriptors)
                expectBalanced(activatorFails ? [old] : [p.table, old])
                #expect(brokenInvariant(sibling) == 0)
            }
            #expect(brokenInvariant(p) == 0)
        }
        leaks.verify(files)
    }

    @Test func aFailedCopyInAtEveryStepLeavesNothing() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let exe = try files.open(p, imageActivator: log.activator())
            let before = p.table
            for k: UInt64 in 1...2 {
                fdr_fail_arm(FDR_FAIL_COPYIN, k)
                let result = errnoOf { try p.exec(exe, data: [7], fds: [0]) }
                #expect(fdr_fail_fired(FDR_FAIL_COPYIN) != 0)
                fdr_fail_arm(FDR_FAIL_COPYIN, 0)
                #expect(result == .badAddress)
                #expect(p.table == before)
            }
            #expect(log.calls.isEmpty)
        }
        leaks.verify(files)
    }

    /// kern_proc_exec with the list in kernel memory (UIO_SYSSPACE) reads
    /// it in place: the same new table as proc_exec, and the only copy-in
    /// is the data's, so a second one never comes.
    @Test func aKernelListIsReadInPlace() throws {
        let leaks = LeakCheck()
        do {
            let p = try process(files: 3)
            let exe = try files.open(p, imageActivator: log.activator())
            let list: [Int32] = [2, 0, 2]
            fdr_fail_arm(FDR_FAIL_COPYIN, 2)
            let error = list.withUnsafeBufferPointer { f in
                kern_proc_exec(p.kernelThread.assumingMemoryBound(to: thread.self), exe,
                               [UInt8(7)], 1, f.baseAddress, f.count, UIO_SYSSPACE)
            }
            let fired = fdr_fail_fired(FDR_FAIL_COPYIN) != 0
            fdr_fail_arm(FDR_FAIL_COPYIN, 0)
            #expect(error == 0)
            #expect(!fired, "the list was copied in")
            #expect(log.calls.count == 1)
            #expect(p.table.openDescriptors == [0, 1, 2])
            #expect(p.payload(of: 0) as? Int == 2)
            #expect(p.payload(of: 1) as? Int == 0)
            #expect(p.payload(of: 2) as? Int == 2)
            expectBalanced([p.table])
        }
        leaks.verify(files)
    }
}
