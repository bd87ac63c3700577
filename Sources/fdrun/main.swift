// fdrun: start a program with exactly the descriptors its YAML
// configuration names, and the configuration as its argdata.
import ArgumentParser
import FDRemap
import FDRunConfig
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// First, before anything here opens a descriptor: what `!fd` may name.
let inherited = InheritedDescriptors.snapshot()

/// An error that ends fdrun with status 127, its message already written.
struct Failure: Error {
    var message: String
}

struct FDRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdrun",
        abstract: "Run a program with exactly the descriptors its YAML configuration names.",
        discussion: """
            The configuration (CONFIG, or standard input) becomes the program's \
            argdata. Tags give it descriptors: !fd stdin|stdout|stderr|N (one fdrun \
            inherited), !file {path: P, mode: read|write|append|readwrite}, \
            !socket {bind: A} or {connect: A} with type: stream|dgram|seqpacket \
            (A is /path, A.B.C.D:PORT or [IPV6]:PORT), and !executable. Untagged \
            scalars follow YAML 1.2's core schema. The program gets no other \
            descriptor, and an empty environment but for --env.

            fdrun replaces itself with the program (as cloudabi-run did): its exit \
            status, or the signal that ended it, is the program's. Errors before the \
            program starts print file:line:column and exit with status 127, with \
            nothing left open.
            """)

    @Flag(help: "Print the plan (each descriptor and where it comes from, the argdata as YAML, its size) and start nothing.")
    var dryRun = false

    @Option(name: .customLong("env"),
            help: ArgumentHelp("Give the program an environment variable (repeatable).",
                               valueName: "NAME=VALUE"))
    var environment: [String] = []

    @Argument(help: "The program to run (a path: PATH is not searched).")
    var executable: String

    @Argument(help: "The YAML configuration (default: standard input).")
    var config: String?

    func run() throws {
        for v in environment {
            guard let eq = v.firstIndex(of: "="), eq != v.startIndex, !v.utf8.contains(0) else {
                throw Failure(message: "fdrun: --env \(quoted(v)): expected NAME=VALUE")
            }
        }
        let file = config ?? "<stdin>"
        let plan: Plan
        do {
            plan = try Plan(parsing: try readConfig(), file: file)
        } catch let e as ConfigurationError {
            throw Failure(message: "\(e.location): error: \(e.message)")
        }
        let program = try openProgram()
        defer { close(program) }
        do {
            if dryRun {
                for source in plan.sources {
                    if case .inherited(let n) = source.kind {
                        try OpenedDescriptors.checkInherited(n, inherited, source.location)
                    }
                }
                print(terminalSafe(plan.report(executable: executable, environment: environment)),
                      terminator: "")
                return
            }
            let opened = try OpenedDescriptors(plan, executable: FileDescriptor(rawValue: program),
                                               inherited: inherited)
            let argdata = plan.argdata(with: opened.descriptors)
            let name = FilePath(executable).lastComponent?.string ?? executable
            let options = Program.Options(name: name, environment: environment)
            let cannotStart = { (error: Errno) in
                // opened closes its descriptors and socket files as it goes.
                Failure(message: "fdrun: cannot start \(quoted(executable)): \(describe(error, argdata))")
            }
            do {
                try Program.checkArguments(argdata: argdata, options: options)
            } catch {
                throw cannotStart(error)
            }
            // Every check done: only now may an existing file be emptied.
            try opened.truncate()
            do {
                try Program.exec(FileDescriptor(rawValue: program), argdata: argdata,
                                 options: options)
            } catch {
                throw cannotStart(error)
            }
        } catch let e as ConfigurationError {
            throw Failure(message: "\(e.location): error: \(e.message)")
        }
    }

    /// The configuration's bytes, at most one more than the limit (so that
    /// a larger one is reported as such).
    func readConfig() throws -> [UInt8] {
        var fd: CInt = 0
        if let config {
            fd = open(config, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw Failure(message: "fdrun: cannot open the configuration \(quoted(config)): \(Errno(rawValue: errno))")
            }
        }
        defer { if config != nil { close(fd) } }
        let limit = Limits().maximumInputBytes + 1
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes {
                read(fd, $0.baseAddress, min($0.count, limit - bytes.count))
            }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(message: "fdrun: cannot read the configuration \(config.map(quoted) ?? "from standard input"): \(Errno(rawValue: errno))")
            }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    /// The program's descriptor: readable when it can be (so that
    /// `!executable` gives the program something to read), else `O_PATH`.
    ///
    /// Never blocks: the path is first opened with `O_PATH` (which opens
    /// nothing behind it) and must be a regular file, so a FIFO, socket or
    /// device is refused before anything reads it. A readable program must
    /// look executable (ELF, or `#!` naming an interpreter that exists), so
    /// that a run which cannot start fails here, before any file is
    /// emptied.
    func openProgram() throws -> CInt {
        let shown = quoted(executable)
        let oPath = Program.openPath
        let probe = open(executable, oPath | O_CLOEXEC)
        guard probe >= 0 else {
            throw Failure(message: "fdrun: cannot open the program \(shown): \(Errno(rawValue: errno))")
        }
        defer { close(probe) }
        var st = stat()
        guard fstat(probe, &st) == 0 else {
            throw Failure(message: "fdrun: cannot examine the program \(shown): \(Errno(rawValue: errno))")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw Failure(message: "fdrun: the program \(shown) is a directory")
        case S_IFIFO: throw Failure(message: "fdrun: the program \(shown) is a FIFO, not a regular file")
        case S_IFSOCK: throw Failure(message: "fdrun: the program \(shown) is a socket, not a regular file")
        default: throw Failure(message: "fdrun: the program \(shown) is a device, not a regular file")
        }
        // Reopened through the O_PATH descriptor: the same regular file,
        // never a FIFO swapped in at the path meanwhile, so no O_NONBLOCK
        // (the descriptor is `!executable`'s). Unreadable, or without
        // /proc, the O_PATH descriptor serves, unchecked: execve decides.
        var fd = open("/proc/self/fd/\(probe)", O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            fd = fcntl(probe, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else {
                throw Failure(message: "fdrun: cannot open the program \(shown): \(Errno(rawValue: errno))")
            }
            return fd
        }
        do {
            try checkFormat(fd)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Refuses a readable program that execve(2) would refuse with
    /// ENOEXEC or ENOENT: neither ELF nor `#!`, or a `#!` whose
    /// interpreter is missing.
    func checkFormat(_ fd: CInt) throws {
        var head = [UInt8](repeating: 0, count: 256)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else {
            throw Failure(message: "fdrun: cannot read the program \(quoted(executable)): \(Errno(rawValue: errno))")
        }
        let bytes = head[0..<n]
        if bytes.starts(with: [0x7f, 0x45, 0x4c, 0x46]) { return }
        guard bytes.starts(with: [0x23, 0x21]) else {
            throw Failure(message: "fdrun: the program \(quoted(executable)) is not an executable (neither ELF nor #!): \(Errno.execFormatError)")
        }
        let line = bytes.dropFirst(2).prefix { $0 != 0x0a }
        let interpreter = line.drop { $0 == 0x20 || $0 == 0x09 }.prefix { $0 != 0x20 && $0 != 0x09 }
        let path = String(decoding: interpreter, as: UTF8.self)
        guard !path.isEmpty, access(path, X_OK) == 0 else {
            throw Failure(message: "fdrun: the program \(quoted(executable)) names the interpreter \(quoted(path)), which cannot be run: \(Errno(rawValue: path.isEmpty ? ENOEXEC : errno))")
        }
    }

    func describe(_ error: any Error, _ argdata: Argdata) -> String {
        guard let e = error as? Errno else { return "\(error)" }
        if e == .argListTooLong {
            let size = argdata.serialize().bytes.count
            return "\(e) (the argdata, \(size) bytes, cannot travel as program arguments, or names too many descriptors)"
        }
        return "\(e)"
    }
}

/// Writes a line to standard error (unbuffered, before exiting).
func printError(_ message: String) {
    let line = Array((terminalSafe(message) + "\n").utf8)
    var done = 0
    while done < line.count {
        let n = line[done...].withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n <= 0 && errno != EINTR { return }
        done += max(n, 0)
    }
}

do {
    var command = try FDRun.parseAsRoot()
    try command.run()
    exit(0)
} catch let failure as Failure {
    printError(failure.message)
    exit(127)
} catch {
    // The argument parser's: help and version exit 0, the rest 127.
    if FDRun.exitCode(for: error) == .success {
        print(terminalSafe(FDRun.fullMessage(for: error)))
        exit(0)
    }
    printError("fdrun: " + FDRun.message(for: error) + "\nUsage: " + FDRun.usageString())
    exit(127)
}
