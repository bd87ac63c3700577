import SystemPackage
internal import CFDRemapKernel

/// How a file of the kernel model is open: FreeBSD's `FREAD`, `FWRITE`
/// and `FEXEC`.
public struct FileAccess: OptionSet, Sendable, Hashable {
    /// The model's `f_flag` bits.
    public let rawValue: UInt32

    /// Creates access flags from the model's raw `f_flag` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Open for reading (`FREAD`).
    public static let read = FileAccess(rawValue: UInt32(FREAD))
    /// Open for writing (`FWRITE`).
    public static let write = FileAccess(rawValue: UInt32(FWRITE))
    /// Open for execution only (`FEXEC`, FreeBSD's `O_EXEC`).
    public static let exec = FileAccess(rawValue: UInt32(FEXEC))
}

/// The identity of an open file of the kernel model.
///
/// Two descriptors refer to the same open file exactly when their
/// `FileID`s are equal. An identity is only meaningful while the file is
/// open: after its last reference goes, a new file may get the same one.
public struct FileID: Hashable, Sendable, CustomStringConvertible {
    internal let bits: UInt

    internal init(_ fp: UnsafeMutablePointer<file>) {
        bits = UInt(bitPattern: fp)
    }

    /// A short hexadecimal rendering, for diagnostics.
    public var description: String { "file@0x" + String(bits, radix: 16) }
}

/// What an image activator is given: the copied-in arguments of the exec.
public struct ImageArguments: Sendable {
    /// The data passed to `exec`, exactly as the caller gave it.
    public let data: [UInt8]
    /// The number of NUL bytes in the data plus the one the kernel
    /// appends ("abc" is 1, "a\0b\0" is 3; empty data is 0).
    public let argc: Int
    /// What is left of `EXEC_ARG_MAX` after the data and its NUL.
    public let stringSpace: Int
    /// The executable's descriptor in the old table.
    public let executable: Int32
    /// The new, remapped table, which is installed if the activator
    /// returns without throwing.
    public let newTable: DescriptorTable

    internal init(_ args: UnsafePointer<image_args>) {
        let a = args.pointee
        let length = a.endp - a.begin_argv
        data = length > 0
            ? Array(UnsafeRawBufferPointer(start: a.begin_argv, count: length - 1))
            : []
        argc = Int(a.argc)
        stringSpace = Int(a.stringspace)
        executable = a.fd
        newTable = DescriptorTable(a.fdp!)
    }
}

/// An image activator: decides whether an exec of its file succeeds.
public typealias ImageActivator = @Sendable (ImageArguments) throws(Errno) -> Void

/// The Swift side of a model file: its payload and hooks, kept alive by
/// the file (`f_data` holds one retain, given up by the close hook).
internal final class FileBox: @unchecked Sendable {
    let payload: any Sendable
    let onClose: (@Sendable () -> Void)?
    let activator: ImageActivator?

    init(payload: any Sendable, onClose: (@Sendable () -> Void)?,
         activator: ImageActivator?) {
        self.payload = payload
        self.onClose = onClose
        self.activator = activator
    }

    static func of(_ fp: UnsafeMutablePointer<file>) -> FileBox {
        Unmanaged<FileBox>.fromOpaque(fp.pointee.f_data!).takeUnretainedValue()
    }
}

/// Runs when a Swift file's last reference goes: the payload's close
/// callback, then the file's retain on its box is released.
private let swiftFileClose: @convention(c) (
    UnsafeMutablePointer<file>?, UnsafeMutablePointer<thread>?
) -> Int32 = { fp, _ in
    let box = Unmanaged<FileBox>.fromOpaque(fp!.pointee.f_data!).takeRetainedValue()
    box.onClose?()
    return 0
}

/// The image activator hook of Swift files: calls the box's closure.
private let swiftFileExec: @convention(c) (
    UnsafeMutablePointer<file>?, UnsafeMutablePointer<image_args>?,
    UnsafeMutablePointer<thread>?
) -> Int32 = { fp, args, _ in
    let box = FileBox.of(fp!)
    do throws(Errno) {
        try box.activator!(ImageArguments(args!))
        return 0
    } catch {
        return error.rawValue
    }
}

/// The four operations tables of Swift files: passable or not, with an
/// image activator or not. Allocated once and never freed, since files
/// point at them for as long as they live.
nonisolated(unsafe) private let swiftFileOps: UnsafeMutablePointer<fileops> = {
    let ops = UnsafeMutablePointer<fileops>.allocate(capacity: 4)
    for i in 0..<4 {
        ops[i] = fileops(
            fo_flags: i & 1 != 0 ? Int32(DFLAG_PASSABLE) : 0,
            fo_close: swiftFileClose,
            fo_exec: i & 2 != 0 ? swiftFileExec : nil)
    }
    return ops
}()

/// The ops table for a file that is (not) passable and has (no) activator.
internal func swiftFileOps(passable: Bool, executable: Bool) -> UnsafePointer<fileops> {
    UnsafePointer(swiftFileOps + (passable ? 1 : 0) + (executable ? 2 : 0))
}

/// Whether a file was opened from Swift, so that its payload is a box.
internal func isSwiftFile(_ fp: UnsafeMutablePointer<file>) -> Bool {
    let ops = UnsafeMutablePointer(mutating: fp.pointee.f_ops!)
    return ops >= swiftFileOps && ops < swiftFileOps + 4
}
