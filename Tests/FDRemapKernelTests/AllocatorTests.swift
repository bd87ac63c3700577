import CFDRemapTestHooks
import Testing
import CFDRemapKernel
#if canImport(Glibc)
import Glibc
#endif
@testable import FDRemap

/// The core's allocator beyond malloc: superpage blocks, the one it keeps
/// for reuse, blocks that grow into superpages, and the file zone. Each
/// path must keep contents, alignment and the byte count right.
@Suite struct AllocatorTests {
    static let big = 6 << 20  // past the 4 MiB superpage threshold

    @Test func largeBlocksAreSuperpageAlignedAndCounted() throws {
        let leaks = LeakCheck()
        for _ in 0..<3 {  // the second and third take the kept block
            let before = fdr_mem_inuse_thread()
            let p = try #require(fdr_malloc(Self.big))
            #expect(UInt(bitPattern: p) % (2 << 20) == 0)
            #expect(fdr_mem_inuse_thread() - before >= Self.big)
            memset(p, 0x5a, Self.big)
            fdr_free(p)
            #expect(fdr_mem_inuse_thread() == before)
        }
        leaks.verify()
    }

    @Test func callocZeroesAReusedBlock() throws {
        let leaks = LeakCheck()
        let dirty = try #require(fdr_malloc(Self.big))
        memset(dirty, 0xff, Self.big)
        fdr_free(dirty)
        let p = try #require(fdr_calloc(Self.big / 8, 8))
        let bytes = UnsafeRawBufferPointer(start: p, count: Self.big)
        #expect(bytes.allSatisfy { $0 == 0 })
        fdr_free(p)
        leaks.verify()
    }

    @Test func aBlockGrowingIntoSuperpagesKeepsItsContents() throws {
        let leaks = LeakCheck()
        var n = 1024
        var p = try #require(fdr_reallocarray(nil, n, 8))
        p.bindMemory(to: UInt64.self, capacity: n)
            .update(repeating: 0, count: n)
        for i in 0..<n { p.storeBytes(of: UInt64(i), toByteOffset: i * 8, as: UInt64.self) }
        while n < 4 << 20 {  // 4 Mi words: 32 MiB, doubling past 4 MiB
            let m = n * 2
            p = try #require(fdr_reallocarray(p, m, 8))
            for i in n..<m { p.storeBytes(of: UInt64(i), toByteOffset: i * 8, as: UInt64.self) }
            n = m
        }
        #expect(UInt(bitPattern: p) % (2 << 20) == 0)
        let words = p.bindMemory(to: UInt64.self, capacity: n)
        #expect((0..<n).allSatisfy { words[$0] == UInt64($0) })
        fdr_free(p)
        leaks.verify()
    }

    @Test func filesComeAlignedAndGoBackCounted() throws {
        let leaks = LeakCheck()
        var files: [UnsafeMutableRawPointer] = []
        for _ in 0..<10_000 {
            let p = try #require(fdr_aligned_alloc(64, 64))
            #expect(UInt(bitPattern: p) % 64 == 0)
            memset(p, 0xa5, 64)
            files.append(p)
        }
        #expect(Set(files).count == files.count)
        // Freed objects are reused, whole.
        for p in files.prefix(5_000) { fdr_free(p) }
        for i in 0..<5_000 {
            files[i] = try #require(fdr_aligned_alloc(64, 64))
            memset(files[i], 0x3c, 64)
        }
        #expect(Set(files).count == files.count)
        for p in files { fdr_free(p) }
        leaks.verify()
    }

    @Test func aFileGrownByReallocKeepsItsBytes() throws {
        let leaks = LeakCheck()
        let p = try #require(fdr_aligned_alloc(64, 64))
        for i in 0..<64 { p.storeBytes(of: UInt8(i), toByteOffset: i, as: UInt8.self) }
        let q = try #require(fdr_reallocarray(p, 128, 1))
        let bytes = UnsafeRawBufferPointer(start: q, count: 64)
        #expect(bytes.elementsEqual(0..<64))
        fdr_free(q)
        leaks.verify()
    }
}
