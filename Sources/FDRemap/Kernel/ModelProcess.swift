import SystemPackage
internal import CFDRemapKernel
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A process of the kernel model, and the descriptor table it holds.
///
/// The model is FreeBSD's: a flat table of slots, each holding an open
/// file with capabilities and a close-on-exec flag. A `ModelProcess` is
/// the only owner of its process: it cannot be copied, and destroying it
/// releases its table, closing every file whose last reference it held.
/// Its operations lock the table as the kernel does, so processes that
/// share a table (``fork(sharingTable:)``) may be used from different
/// threads at once.
public struct ModelProcess: ~Copyable, @unchecked Sendable {
    internal let td: UnsafeMutablePointer<thread>

    /// Creates a process with an empty table (C's `proc_create`).
    ///
    /// - Throws: `ENOMEM`.
    public init() throws(Errno) {
        guard let td = proc_create() else { throw Errno.noMemory }
        self.td = td
    }

    private init(td: UnsafeMutablePointer<thread>) {
        self.td = td
    }

    deinit {
        proc_destroy(td)
    }

    /// The model's `struct thread *` of this process, for code that must
    /// call the C core on the very same process (the benchmarks compare
    /// this module with C on one table). Not API: it bypasses every
    /// guarantee of this type, and it is valid only while `self` lives.
    @_spi(KernelAccess)
    public var kernelThread: UnsafeMutableRawPointer { UnsafeMutableRawPointer(td) }

    /// Takes ownership of a process of the C core (a `struct thread *`
    /// from `proc_create`, say one the benchmarks built in C), so that
    /// this module's calls can be measured on a table built without it.
    /// Not API, as ``kernelThread``: the process is destroyed with `self`.
    @_spi(KernelAccess)
    public init(adopting kernelThread: UnsafeMutableRawPointer) {
        self.td = kernelThread.assumingMemoryBound(to: thread.self)
    }

    internal var fdp: UnsafeMutablePointer<filedesc> {
        td.pointee.td_proc.pointee.p_fd
    }

    /// Creates a child process, as `fork` does (C's `proc_fork`, with
    /// `fdshare` or `fdcopy` of the table).
    ///
    /// - Parameter sharingTable: `true` shares this process's table (one
    ///   more reference on it), `false` gives the child a copy holding
    ///   every passable file with its flags and capabilities.
    /// - Throws: `ENOMEM`.
    public func fork(sharingTable: Bool = false) throws(Errno) -> ModelProcess {
        guard let child = proc_fork(td, sharingTable ? 1 : 0) else {
            throw Errno.noMemory
        }
        return ModelProcess(td: child)
    }

    /// The highest descriptor number plus one that the process may use,
    /// the model's `RLIMIT_NOFILE`. Read and set atomically: it may be
    /// lowered while other threads open descriptors.
    public var descriptorLimit: Int {
        get { Int(lim_nofile(td.pointee.td_proc)) }
        nonmutating set {
            lim_set_nofile(td.pointee.td_proc, Int32(clamping: newValue))
        }
    }

    /// A snapshot of the table, read under its shared lock.
    public var table: DescriptorTable { DescriptorTable(fdp) }

    /// Opens a new file (C's `falloc_noinstall` and `finit`) and
    /// installs it (`finstall`) in the lowest free slot, or in
    /// slot `slot` when one is given.
    ///
    /// The table's slot holds the only reference: the file closes, and
    /// `onClose` runs, when the last slot holding it (in any table) goes.
    ///
    /// - Parameters:
    ///   - payload: What the file stands for; see ``payload(of:)``.
    ///   - slot: The descriptor to install it as, which must be free
    ///     (`finstall_fixed`); `nil` takes the lowest free one.
    ///   - access: How the file is open, which decides whether it can be
    ///     executed (``exec(_:data:fds:)``).
    ///   - passable: Whether the file may be passed to a new program
    ///     (`DFLAG_PASSABLE`; FreeBSD's kqueues are not).
    ///   - closeOnExec: Whether the slot is close-on-exec (`O_CLOEXEC`).
    ///   - capabilities: The slot's capabilities.
    ///   - imageActivator: What an exec of this file does; `nil` makes an
    ///     exec of it fail with `EACCES`.
    ///   - onClose: Runs exactly once: on whichever thread drops the
    ///     file's last reference, or before `open` throws. Either way the
    ///     payload is released then.
    /// - Returns: The new descriptor.
    /// - Throws: `EMFILE` past ``descriptorLimit``, `ENOMEM`; with a
    ///   slot, `EBADF` when it is negative or past ``descriptorLimit``
    ///   and `EBUSY` when it is in use.
    public func open(
        _ payload: any Sendable = (),
        at slot: Int32? = nil,
        access: FileAccess = .read,
        passable: Bool = true,
        closeOnExec: Bool = false,
        capabilities: Capabilities = .all,
        imageActivator: ImageActivator? = nil,
        onClose: (@Sendable () -> Void)? = nil
    ) throws(Errno) -> Int32 {
        var fp: UnsafeMutablePointer<file>?
        var error = falloc_noinstall(td, &fp)
        guard error == 0, let fp else {
            onClose?()
            throw Errno(rawValue: error)
        }
        let box = FileBox(payload: payload, onClose: onClose, activator: imageActivator)
        finit(fp, access.rawValue, Int16(DTYPE_VNODE),
              Unmanaged.passRetained(box).toOpaque(),
              swiftFileOps(passable: passable, executable: imageActivator != nil))
        var caps = filecaps()
        var fd: Int32 = slot ?? -1
        let flags = closeOnExec ? O_CLOEXEC : 0
        // Either install moves caps's ioctl array into the slot, or frees it.
        func install(_ fcaps: UnsafeMutablePointer<filecaps>?) -> Int32 {
            slot == nil ? finstall(td, fp, &fd, flags, fcaps)
                : finstall_fixed(td, fp, fd, flags, fcaps)
        }
        if capabilities != .all {
            error = withFileCaps(capabilities, &caps)
            if error == 0 { error = install(&caps) }
        } else {
            error = install(nil)
        }
        // Our own reference goes; on error it was the only one and the
        // file closes, running onClose.
        _ = fdrop(fp, td)
        guard error == 0 else { throw Errno(rawValue: error) }
        return fd
    }

    /// Duplicates a descriptor into the lowest free slot, as `dup`
    /// (C's `kern_dup` with `FDDUP_NORMAL`).
    ///
    /// The new slot gets the old one's capabilities; it is close-on-exec
    /// only when asked.
    /// - Throws: `EBADF`, `EMFILE`, `ENOMEM`.
    public func duplicate(_ fd: Int32, closeOnExec: Bool = false) throws(Errno) -> Int32 {
        try dup(UInt32(FDDUP_NORMAL), fd, 0, closeOnExec)
    }

    /// Duplicates a descriptor into slot `target`, as `dup2` (C's
    /// `kern_dup` with `FDDUP_FIXED`), closing
    /// what was there. Duplicating a descriptor onto itself only checks
    /// that it is open (and sets close-on-exec when asked).
    /// - Throws: `EBADF`, `ENOMEM`.
    @discardableResult
    public func duplicate(_ fd: Int32, as target: Int32, closeOnExec: Bool = false) throws(Errno) -> Int32 {
        try dup(UInt32(FDDUP_FIXED), fd, target, closeOnExec)
    }

    private func dup(_ mode: UInt32, _ old: Int32, _ new: Int32, _ cloexec: Bool) throws(Errno) -> Int32 {
        let error = kern_dup(td, mode, cloexec ? Int32(FDDUP_FLAG_CLOEXEC) : 0, old, new)
        guard error == 0 else { throw Errno(rawValue: error) }
        return Int32(td.pointee.td_retval.0)
    }

    /// Closes a descriptor (C's `kern_close`). The file closes when its
    /// last reference goes.
    /// - Throws: `EBADF`.
    public func close(_ fd: Int32) throws(Errno) {
        let error = kern_close(td, fd)
        guard error == 0 else { throw Errno(rawValue: error) }
    }

    /// The payload of the file at descriptor `fd`, or `nil` when the
    /// descriptor is not open or its file was not opened from Swift
    /// (read under the table's shared lock, `filedesc_slock`).
    public func payload(of fd: Int32) -> (any Sendable)? {
        let fdp = self.fdp
        filedesc_slock(fdp)
        defer { filedesc_unlock(fdp) }
        guard fd >= 0, fd <= fdp.pointee.fd_lastfile,
              let fp = fdp.pointee.fd_ofiles[Int(fd)].fde_file,
              isSwiftFile(fp)
        else { return nil }
        return FileBox.of(fp).payload
    }

    /// Builds a new table whose descriptor `i` is this table's `fds[i]`,
    /// with its capabilities and flags (close-on-exec too) unchanged.
    ///
    /// This is `fdcopy_remapped`: one call into the core for the whole
    /// list. The process keeps its own table; install the new one with
    /// ``install(_:)`` or drop it.
    /// - Throws: `E2BIG` for more descriptors than `lastFile + 1`;
    ///   `EBADF` for a negative descriptor, one above `lastFile` or a free
    ///   slot; `EINVAL` for a file that is not passable (the first bad
    ///   entry decides); `ENOMEM`.
    public func remap(_ fds: [Int32]) throws(Errno) -> RemappedTable {
        var newfdp: UnsafeMutablePointer<filedesc>?
        let error = fds.withUnsafeBufferPointer {
            fdcopy_remapped(fdp, $0.baseAddress, $0.count, &newfdp)
        }
        guard error == 0, let newfdp else { throw Errno(rawValue: error) }
        return RemappedTable(newfdp)
    }

    /// Makes `table` this process's table and releases the old one
    /// (`fdinstall_remapped`). Files whose last reference the old table
    /// held close; a shared old table only loses this process.
    public func install(_ table: consuming RemappedTable) {
        fdinstall_remapped(td, table.take())
    }

    /// CloudABI's exec (`proc_exec`): copies in `data` and the descriptor
    /// list, runs the image activator of the file at `fd`, and installs
    /// the remapped table only if it succeeds.
    ///
    /// On any error the process keeps its table exactly as it was.
    /// - Throws: `E2BIG` (data of `EXEC_ARG_MAX` bytes or more, or too many
    ///   descriptors), the errors of ``remap(_:)``, `EBADF` when `fd` is
    ///   not open, open for writing, or neither readable nor executable,
    ///   `EACCES` when its file has no image activator, or the
    ///   activator's own error.
    public func exec(_ fd: Int32, data: [UInt8] = [], fds: [Int32]) throws(Errno) {
        let error = data.withUnsafeBytes { d in
            fds.withUnsafeBufferPointer { f in
                proc_exec(td, fd, d.baseAddress, d.count, f.baseAddress, f.count)
            }
        }
        guard error == 0 else { throw Errno(rawValue: error) }
    }

    /// The largest exec data, plus one: FreeBSD 11's `ARG_MAX`.
    public static let execArgumentLimit = Int(EXEC_ARG_MAX)
}

/// Fills `caps` for `finstall`, which takes ownership of the ioctl array:
/// the array is allocated by the core's allocator, as it frees it.
private func withFileCaps(_ c: Capabilities, _ caps: inout filecaps) -> Int32 {
    caps.fc_rights = c.rights
    caps.fc_fcntls = c.fcntls
    caps.fc_nioctls = -1
    caps.fc_ioctls = nil
    guard let ioctls = c.ioctls else { return 0 }
    guard ioctls.count <= Int(Int16.max) else { return EINVAL }
    let bytes = max(ioctls.count, 1) * MemoryLayout<UInt>.stride
    guard let raw = fdr_malloc(bytes) else { return ENOMEM }
    let array = raw.bindMemory(to: UInt.self, capacity: max(ioctls.count, 1))
    ioctls.withUnsafeBufferPointer {
        array.update(from: $0.baseAddress!, count: $0.count)
    }
    caps.fc_ioctls = array
    caps.fc_nioctls = Int16(ioctls.count)
    return 0
}

/// A table built by ``ModelProcess/remap(_:)`` that no process uses yet.
///
/// Dropping it releases every reference it holds
/// (`fdescfree_remapped`); ``ModelProcess/install(_:)`` consumes it.
public struct RemappedTable: ~Copyable, @unchecked Sendable {
    private var fdp: UnsafeMutablePointer<filedesc>?

    internal init(_ fdp: UnsafeMutablePointer<filedesc>) {
        self.fdp = fdp
    }

    deinit {
        if let fdp { fdescfree_remapped(fdp) }
    }

    /// Gives the table to the caller, who becomes responsible for it.
    internal consuming func take() -> UnsafeMutablePointer<filedesc> {
        let p = fdp!
        fdp = nil
        return p
    }

    /// The number of descriptors in the table.
    public var count: Int { Int(fdp!.pointee.fd_lastfile) + 1 }

    /// A snapshot of the table.
    public var table: DescriptorTable { DescriptorTable(fdp!) }
}
