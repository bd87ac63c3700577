// A descriptor list that another thread rewrites while the launch reads
// it: the launcher copies it in once, so the model checks and the child
// gets one snapshot of it. Some entries flip between two open
// descriptors (the others stay), so every snapshot is valid: each launch
// must succeed (a second copy-in could see a number the first did not
// mirror and fail with EBADF, or differ from the early child's plan:
// EINVAL), and each child's descriptor i must be one of the two files
// of entry i.
import CFDRemapHost
import Glibc
import Synchronization
import Testing

@Suite struct RewrittenListTests {
    /// The serial path (8 entries) and the early child's.
    @Test(arguments: [(8, 40), (earlyLength, 12)])
    func aListRewrittenMeanwhileGivesOneSnapshot(count: Int, launches: Int) throws {
        raiseNoFile(12000)
        let o = Opened()
        let report = o.memfd()
        // Entries 1 ... flipping flip between a[i] and b[i], copies of two
        // files at numbers of their own; the others are one copy of the
        // first file, and the last one sits at the list's length, so that
        // the list is never longer than the table (E2BIG).
        let flipping = min(count - 2, 64)
        let fileA = o.memfd(), fileB = o.memfd()
        let a = (0..<flipping).map { _ in o.dup(fileA, atLeast: 100) }
        let b = (0..<flipping).map { _ in o.dup(fileB, atLeast: 100) }
        let idA = try #require(FileID(fd: fileA)), idB = try #require(FileID(fd: fileB))
        let list = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        defer { list.deallocate() }
        list[0] = report
        for i in 1..<count { list[i] = i <= flipping ? a[i - 1] : fileA }
        list[count - 1] = o.dup(fileA, atLeast: Int32(count))

        // The writer flips entries, one at a time, until told to stop.
        final class Writer: @unchecked Sendable {
            let list: UnsafeMutablePointer<Int32>
            let a: [Int32], b: [Int32]
            let stop = Atomic<Bool>(false)
            let flips = Atomic<Int>(0)
            init(_ list: UnsafeMutablePointer<Int32>, _ a: [Int32], _ b: [Int32]) {
                self.list = list
                self.a = a
                self.b = b
            }
            func run() {
                var i = 0
                while !stop.load(ordering: .relaxed) {
                    list[i + 1] = list[i + 1] == a[i] ? b[i] : a[i]
                    flips.add(1, ordering: .relaxed)
                    i = (i + 1) % a.count
                }
            }
        }
        let writer = Writer(list, a, b)
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { arg in
            Unmanaged<Writer>.fromOpaque(arg!).takeUnretainedValue().run()
            return nil
        }, Unmanaged.passUnretained(writer).toOpaque())
        try #require(started == 0)
        defer {
            writer.stop.store(true, ordering: .relaxed)
            pthread_join(thread, nil)
        }

        let probe = o.open(Probe.path)
        let command = data(["report", "0"])
        var failures: [Int32] = []
        for _ in 0..<launches {
            ftruncate(report, 0)
            lseek(report, 0, SEEK_SET)
            var pid: pid_t = -1
            var attr = program_attr()
            attr.pa_flags = early   // long lists start early, even on a busy machine
            let error = command.withUnsafeBytes { c in
                program_spawn_raw(probe, c.baseAddress, c.count, list, count, &attr, &pid)
            }
            guard error == 0 else {
                failures.append(error)
                continue
            }
            let status = reap(pid)
            #expect(exitCode(status) == 0, "probe status \(status)")
            let r = ProbeReport(Probe.read(report))
            #expect(r.ended, "incomplete report")
            #expect(r.fds.keys.sorted() == Array(0..<Int32(count)))
            #expect(r.fds[0]?.id == FileID(fd: report))
            let foreign = (1..<count).filter {
                let id = r.fds[Int32($0)]?.id
                return id != idA && id != idB
            }
            #expect(foreign.isEmpty, "descriptors of neither file: \(foreign.prefix(5))")
        }
        #expect(failures.isEmpty, "launches refused: \(failures)")
        #expect(writer.flips.load(ordering: .relaxed) > launches, "the writer ran meanwhile")
    }
}
