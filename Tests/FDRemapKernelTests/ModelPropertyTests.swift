import Testing
import FDRemapTestSupport
import SystemPackage
import CFDRemapKernel
@testable import FDRemap
#if canImport(Glibc)
import Glibc
#endif

/// A small, obviously correct model of a descriptor table and of
/// fdcopy_remapped / proc_exec, written from kernel.md alone: a dictionary
/// of slots and a list of files, no bitmaps, no hints, no prefetching.
struct ReferenceModel {
    enum Activator { case none, succeeds, fails }

    struct File {
        var passable: Bool
        var access: FileAccess
        var activator: Activator
    }

    struct Slot: Equatable {
        var file: Int
        var closeOnExec: Bool
        var capabilities: Capabilities
    }

    var files: [File] = []
    var slots: [Int: Slot] = [:]
    var limit = Int.max

    var lastFile: Int { slots.keys.max() ?? -1 }
    var lowestFree: Int { (0...).first { slots[$0] == nil }! }

    /// open/finstall: the lowest free slot.
    mutating func open(_ f: File, cloexec: Bool, caps: Capabilities) -> Errno? {
        files.append(f)
        guard lowestFree < limit else { return .tooManyOpenFiles }
        slots[lowestFree] = Slot(file: files.count - 1, closeOnExec: cloexec, capabilities: caps)
        return nil
    }

    /// finstall_fixed: exactly slot fd, which must be free.
    mutating func open(_ f: File, at fd: Int, cloexec: Bool, caps: Capabilities) -> Errno? {
        files.append(f)
        guard fd >= 0, fd < limit else { return .badFileDescriptor }
        guard slots[fd] == nil else { return .resourceBusy }
        slots[fd] = Slot(file: files.count - 1, closeOnExec: cloexec, capabilities: caps)
        return nil
    }

    mutating func close(_ fd: Int) -> Errno? {
        slots.removeValue(forKey: fd) == nil ? .badFileDescriptor : nil
    }

    mutating func dup(_ old: Int, cloexec: Bool) -> Errno? {
        guard var s = slots[old] else { return .badFileDescriptor }
        guard lowestFree < limit else { return .tooManyOpenFiles }
        s.closeOnExec = cloexec
        slots[lowestFree] = s
        return nil
    }

    mutating func dup2(_ old: Int, _ new: Int, cloexec: Bool) -> Errno? {
        guard old >= 0, new >= 0, new < limit, var s = slots[old] else { return .badFileDescriptor }
        if old == new {
            if cloexec { slots[old]!.closeOnExec = true }
            return nil
        }
        s.closeOnExec = cloexec
        slots[new] = s
        return nil
    }

    /// fdcopy_remapped, by the rules of kernel.md.
    func remap(_ fds: [Int32]) -> Result<[Slot], Errno> {
        if fds.count > lastFile + 1 { return .failure(.argListTooLong) }
        var out: [Slot] = []
        for fd in fds {
            guard fd >= 0, Int(fd) <= lastFile, let s = slots[Int(fd)] else {
                return .failure(.badFileDescriptor)
            }
            guard files[s.file].passable else { return .failure(.invalidArgument) }
            out.append(s)
        }
        return .success(out)
    }

    /// proc_exec: copy-in, then the executable, then its activator.
    mutating func exec(_ fd: Int32, _ fds: [Int32]) -> Errno? {
        let new: [Slot]
        switch remap(fds) {
        case .failure(let e): return e
        case .success(let s): new = s
        }
        guard fd >= 0, let s = slots[Int(fd)] else { return .badFileDescriptor }
        let f = files[s.file]
        if f.access.contains(.write) || f.access.isDisjoint(with: [.read, .exec]) {
            return .badFileDescriptor
        }
        switch f.activator {
        case .none: return .permissionDenied
        case .fails: return .execFormatError
        case .succeeds: break
        }
        slots = Dictionary(uniqueKeysWithValues: new.enumerated().map { ($0.offset, $0.element) })
        return nil
    }

    /// The number of slots holding each file.
    func holders(_ extra: [Slot] = []) -> [Int: Int] {
        var n: [Int: Int] = [:]
        for s in Array(slots.values) + extra { n[s.file, default: 0] += 1 }
        return n
    }
}

/// Runs the C core against the reference model on random tables and
/// random descriptor lists, comparing the result code, every slot and
/// every reference count.
@Suite struct ModelPropertyTests {
    /// Cases per run: FDREMAP_PROPERTY_CASES overrides the default.
    static let cases: Int = {
        if let s = getenv("FDREMAP_PROPERTY_CASES"), let n = Int(String(cString: s)) { return n }
        return 20_000
    }()

    /// One random case; returns a description of the first divergence,
    /// and records what the case ended in.
    static func runCase(seed: UInt64, outcomes: inout [String: Int]) throws -> String? {
        var rng = SplitMix64(seed: seed)
        var model = ReferenceModel()
        let tracker = FileTracker()
        let p = try ModelProcess()
        var ids: [FileID: Int] = [:]           // C file -> model file
        let accesses: [FileAccess] = [.read, .read, .exec, [.read, .exec], .write, [.read, .write], []]

        func randomCaps() -> Capabilities {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: return Capabilities(rights: (rng.next(), rng.next()),
                                        ioctls: (0..<Int.random(in: 0...3, using: &rng)).map { _ in UInt(rng.next() >> 40) },
                                        fcntls: UInt32.random(in: 0...15, using: &rng))
            case 1: return Capabilities(rights: (1, 0), ioctls: nil, fcntls: 0)
            default: return .all
            }
        }

        // Build a random table through the public operations.
        if Int.random(in: 0..<8, using: &rng) == 0 {
            let limit = Int.random(in: 1...12, using: &rng)
            p.descriptorLimit = limit
            model.limit = limit
        }
        let ops = Int.random(in: 0...40, using: &rng)
        for _ in 0..<ops {
            let roll = Int.random(in: 0..<10, using: &rng)
            let span = max(model.lastFile + 3, 2)
            let fd = Int32(Int.random(in: -1..<span, using: &rng))
            let cloexec = Bool.random(using: &rng)
            var expected: Errno?
            var actual: Errno?
            switch roll {
            case 0..<5:
                let f = ReferenceModel.File(
                    passable: Int.random(in: 0..<6, using: &rng) != 0,
                    access: accesses.randomElement(using: &rng)!,
                    activator: [.none, .succeeds, .fails].randomElement(using: &rng)!)
                let caps = randomCaps()
                // One open in four names its slot (finstall_fixed).
                let slot: Int32? = Int.random(in: 0..<4, using: &rng) == 0 ? fd : nil
                expected = slot.map { model.open(f, at: Int($0), cloexec: cloexec, caps: caps) }
                    ?? model.open(f, cloexec: cloexec, caps: caps)
                let activator: ImageActivator? = switch f.activator {
                case .none: nil
                case .succeeds: { _ throws(Errno) in }
                case .fails: { _ throws(Errno) in throw Errno.execFormatError }
                }
                do {
                    let got = try tracker.open(p, model.files.count - 1, at: slot, access: f.access,
                                               passable: f.passable, closeOnExec: cloexec,
                                               capabilities: caps, imageActivator: activator)
                    ids[p.table[got]!.file] = model.files.count - 1
                } catch { actual = error }
            case 5..<7:
                expected = model.close(Int(fd))
                actual = errnoOf { try p.close(fd) }
            case 7:
                expected = fd < 0 ? .badFileDescriptor : model.dup(Int(fd), cloexec: cloexec)
                actual = errnoOf { _ = try p.duplicate(fd, closeOnExec: cloexec) }
            default:
                let target = Int32(Int.random(in: -1..<(span + 3), using: &rng))
                expected = model.dup2(Int(fd), Int(target), cloexec: cloexec)
                actual = errnoOf { try p.duplicate(fd, as: target, closeOnExec: cloexec) }
            }
            if expected != actual { return "build: expected \(String(describing: expected)), got \(String(describing: actual))" }
        }
        if let d = compare(p.table, model.slots, model.holders(), ids) { return "after build: " + d }
        if brokenInvariant(p) != 0 { return "invariant \(brokenInvariant(p)) after build" }

        // A random descriptor list: valid, holes, negative, out of range,
        // duplicates, and sometimes too long.
        let last = model.lastFile
        var n = Int.random(in: 0...max(last + 1, 0), using: &rng)
        if Int.random(in: 0..<10, using: &rng) == 0 { n = last + 1 + Int.random(in: 1...3, using: &rng) }
        let open = model.slots.keys.sorted()
        let fds: [Int32] = (0..<n).map { _ in
            switch Int.random(in: 0..<20, using: &rng) {
            case 0: return Int32.random(in: Int32.min...(-1), using: &rng)
            case 1: return Int32(last + 1 + Int.random(in: 0..<70, using: &rng))
            case 2..<4: return Int32(Int.random(in: 0...max(last, 0), using: &rng))
            default: return open.isEmpty ? -1 : Int32(open.randomElement(using: &rng)!)
            }
        }

        if Bool.random(using: &rng) {
            // fdcopy_remapped, then fdescfree_remapped.
            let expected = model.remap(fds)
            switch expected {
            case .success: outcomes["remap ok", default: 0] += 1
            case .failure(let e): outcomes["remap \(e)", default: 0] += 1
            }
            do {
                let t = try p.remap(fds)
                guard case .success(let slots) = expected else {
                    return "remap \(fds): expected \(expected), succeeded"
                }
                let newSlots = Dictionary(uniqueKeysWithValues: slots.enumerated().map { ($0.offset, $0.element) })
                if let d = compare(t.table, newSlots, model.holders(slots), ids) { return "new table: " + d }
                if let d = compare(p.table, model.slots, model.holders(slots), ids) { return "old table: " + d }
            } catch {
                guard case .failure(let e) = expected, e == error else {
                    return "remap \(fds): expected \(expected), got \(error)"
                }
            }
        } else {
            let exe = Int32(open.isEmpty || Int.random(in: 0..<8, using: &rng) == 0
                ? Int.random(in: -1...(last + 2), using: &rng) : open.randomElement(using: &rng)!)
            // Half the execs run on a table another process shares
            // (references taken), half on one of its own (references
            // moved); the sibling keeps the old table either way.
            let oldSlots = model.slots
            let sibling = Bool.random(using: &rng) ? try p.fork(sharingTable: true) : nil
            let path = sibling == nil ? "moved" : "shared"
            let expected = model.exec(exe, fds)
            outcomes["exec \(expected.map { "\($0)" } ?? "ok")", default: 0] += 1
            outcomes["exec \(path) \(expected == nil ? "ok" : "failed")", default: 0] += 1
            let actual = errnoOf { try p.exec(exe, data: [1, 0, 2], fds: fds) }
            if expected != actual {
                return "exec \(path) \(exe) \(fds): expected \(String(describing: expected)), got \(String(describing: actual))"
            }
            if let sibling {
                let both = model.holders(expected == nil ? Array(oldSlots.values) : [])
                if let d = compare(sibling.table, oldSlots, both, ids) { return "sibling: " + d }
                if let d = compare(p.table, model.slots, both, ids) { return "after shared exec: " + d }
                if brokenInvariant(sibling) != 0 { return "invariant \(brokenInvariant(sibling)) of the sibling" }
            }
        }
        if let d = compare(p.table, model.slots, model.holders(), ids) { return "after: " + d }
        if brokenInvariant(p) != 0 { return "invariant \(brokenInvariant(p)) after" }
        let live = Set(model.slots.values.map(\.file)).count
        if tracker.liveCount != live { return "\(tracker.liveCount) files open, \(live) referenced" }
        return nil
    }

    /// Compares a C table with model slots: each slot's file, flags and
    /// capabilities, and each file's count against its holders.
    static func compare(_ t: DescriptorTable, _ slots: [Int: ReferenceModel.Slot],
                        _ holders: [Int: Int], _ ids: [FileID: Int]) -> String? {
        let last = slots.keys.max() ?? -1
        guard t.lastFile == last else { return "lastFile \(t.lastFile), model \(last)" }
        let lowest = (0...).first { slots[$0] == nil }!
        guard t.freeFile == min(lowest, max(t.capacity, lowest)) else {
            return "freeFile \(t.freeFile), model \(lowest)"
        }
        for fd in 0...max(last, 0) where fd <= last {
            let c = t.slots[fd]
            let m = slots[fd]
            guard (c == nil) == (m == nil) else { return "slot \(fd) used \(c != nil), model \(m != nil)" }
            guard let c, let m else { continue }
            guard ids[c.file] == m.file else { return "slot \(fd) file \(String(describing: ids[c.file])), model \(m.file)" }
            guard c.closeOnExec == m.closeOnExec else { return "slot \(fd) close-on-exec" }
            guard c.capabilities == m.capabilities else { return "slot \(fd) capabilities" }
            guard c.referenceCount == holders[m.file] else {
                return "file \(m.file) count \(c.referenceCount), holders \(holders[m.file] ?? 0)"
            }
        }
        return nil
    }

    @Test func theCoreAgreesWithTheReferenceModel() throws {
        let leaks = LeakCheck()
        let base: UInt64 = 0xFD_2E_3A_9
        var divergences: [String] = []
        var outcomes: [String: Int] = [:]
        for i in 0..<Self.cases {
            let seed = base &+ UInt64(i)
            if let d = try Self.runCase(seed: seed, outcomes: &outcomes) {
                divergences.append("seed \(seed): \(d)")
                if divergences.count == 5 { break }
            }
        }
        #expect(divergences.isEmpty, "\(divergences.joined(separator: "\n"))")
        // Every outcome must be well exercised, or the test proves little.
        let errors: [Errno] = [.argListTooLong, .badFileDescriptor, .invalidArgument]
        let wanted = ["remap ok", "exec ok", "exec \(Errno.permissionDenied)",
                      "exec \(Errno.execFormatError)", "exec moved ok", "exec moved failed",
                      "exec shared ok", "exec shared failed"]
            + errors.flatMap { ["remap \($0)", "exec \($0)"] }
        for w in wanted {
            #expect(outcomes[w, default: 0] >= Self.cases / 200, "\(w): \(outcomes[w, default: 0]) of \(Self.cases)")
        }
        leaks.verify()
    }

    /// The model itself must be able to tell a wrong answer: a core that
    /// ignored passability would be caught.
    @Test func theModelRejectsNonPassableFiles() {
        var m = ReferenceModel()
        _ = m.open(.init(passable: false, access: .read, activator: .none), cloexec: false, caps: .all)
        #expect(m.remap([0]) == .failure(.invalidArgument))
        #expect(m.exec(0, []) == .permissionDenied)
    }
}
