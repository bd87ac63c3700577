import SystemPackage
internal import CFDRemapKernel

/// The capabilities of a descriptor: FreeBSD's `struct filecaps`.
public struct Capabilities: Sendable, Equatable {
    /// The rights bits, by value.
    public var rights: (UInt64, UInt64)
    /// The ioctls allowed, or `nil` when all are.
    public var ioctls: [UInt]?
    /// The fcntls allowed.
    public var fcntls: UInt32

    /// Creates capabilities from their parts.
    public init(rights: (UInt64, UInt64), ioctls: [UInt]?, fcntls: UInt32) {
        self.rights = rights
        self.ioctls = ioctls
        self.fcntls = fcntls
    }

    /// Every right, every ioctl, every fcntl: what a descriptor gets when
    /// nothing limits it.
    public static let all = Capabilities(
        rights: (.max, .max), ioctls: nil, fcntls: .max)

    /// Whether two sets of capabilities grant the same.
    public static func == (a: Capabilities, b: Capabilities) -> Bool {
        a.rights == b.rights && a.ioctls == b.ioctls && a.fcntls == b.fcntls
    }

    internal init(_ c: filecaps) {
        rights = c.fc_rights
        fcntls = c.fc_fcntls
        if let p = c.fc_ioctls {
            ioctls = Array(UnsafeBufferPointer(start: p, count: max(Int(c.fc_nioctls), 0)))
        } else {
            ioctls = c.fc_nioctls < 0 ? nil : []
        }
    }
}

/// One used slot of a descriptor table, as observed.
public struct DescriptorEntry: Sendable, Equatable {
    /// The open file in the slot.
    public var file: FileID
    /// Whether the slot is close-on-exec (`UF_EXCLOSE`).
    public var closeOnExec: Bool
    /// The slot's capabilities.
    public var capabilities: Capabilities
    /// The file's reference count when the table was observed: one per
    /// slot holding it in any table, plus any other holder's.
    public var referenceCount: Int
}

/// A snapshot of a descriptor table, read under its shared lock.
public struct DescriptorTable: Sendable, Equatable {
    /// The slots from 0 to the highest used one; `nil` for a free slot.
    public var slots: [DescriptorEntry?]
    /// The highest used slot, -1 when the table is empty
    /// (`fd_lastfile`).
    public var lastFile: Int
    /// No slot below this one is free (`fd_freefile`).
    public var freeFile: Int
    /// The number of slots the table has room for (`fd_nfiles`).
    public var capacity: Int
    /// The umask (`fd_cmask`).
    public var umask: UInt16

    /// The descriptors in use, in increasing order.
    public var openDescriptors: [Int32] {
        slots.indices.compactMap { slots[$0] == nil ? nil : Int32($0) }
    }

    /// The entry of descriptor `fd`, or `nil` when it is not open.
    public subscript(fd: Int32) -> DescriptorEntry? {
        fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)] : nil
    }

    internal init(_ fdp: UnsafeMutablePointer<filedesc>) {
        filedesc_slock(fdp)
        defer { filedesc_unlock(fdp) }
        let t = fdp.pointee
        lastFile = Int(t.fd_lastfile)
        freeFile = Int(t.fd_freefile)
        capacity = Int(t.fd_nfiles)
        umask = t.fd_cmask
        slots = (0..<(lastFile + 1)).map { i -> DescriptorEntry? in
            let e = t.fd_ofiles + i
            guard let fp = e.pointee.fde_file else { return nil }
            return DescriptorEntry(
                file: FileID(fp),
                closeOnExec: e.pointee.fde_flags & UInt8(UF_EXCLOSE) != 0,
                capabilities: Capabilities(fdecaps(e).pointee),
                referenceCount: Int(file_count(fp)))
        }
    }
}
