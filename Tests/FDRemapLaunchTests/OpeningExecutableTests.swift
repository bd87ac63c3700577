// Program.openExecutable(at:) (fdrun's checked open, in the module): a
// regular readable file of a known format is opened readable; what
// execve would refuse for its kind or format is refused at once, with
// the errno a launch would give, and nothing left open. Also the
// configuration helpers fdrun now takes from the module.
import FDRemap
import Glibc
import SystemPackage
import Testing

/// A file at a fresh path under /tmp with `contents` and `mode`; the
/// caller removes it.
func writeFile(_ contents: String, mode: mode_t) -> String {
    var template = Array("/tmp/fdremap-exe-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    precondition(fd >= 0)
    _ = Array(contents.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    fchmod(fd, mode)
    close(fd)
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

@Suite struct OpeningExecutableTests {
    /// ELF and a #! naming an interpreter that exists: opened readable
    /// (the program can be handed its own file) and close-on-exec.
    @Test func opensRunnableFilesReadable() throws {
        let script = writeFile("#!/bin/sh\nexit 0\n", mode: 0o755)
        defer { unlink(script) }
        for path in ["/bin/true", script] {
            let fd = try Program.openExecutable(at: FilePath(path))
            defer { try? fd.close() }
            let flags = fcntl(fd.rawValue, F_GETFL)
            #expect(flags & O_ACCMODE == O_RDONLY, "\(path)")
            #expect(flags & Program.openPath == 0, "\(path)")
            #expect(fcntl(fd.rawValue, F_GETFD) & FD_CLOEXEC != 0, "\(path)")
        }
    }

    /// Each refusal, its case and its errno, before anything reads the
    /// file (a FIFO without a writer does not block), nothing left open.
    @Test func refusesWhatExecveWouldRefuse() throws {
        var fifo = Array("/tmp/fdremap-fifo-XXXXXX".utf8CString)
        let dir = mkdtemp(&fifo).map { String(cString: $0) } ?? "/tmp"
        defer { rmdir(dir) }
        let fifoPath = dir + "/fifo"
        #expect(mkfifo(fifoPath, 0o755) == 0)
        defer { unlink(fifoPath) }
        let garbage = writeFile("garbage\n", mode: 0o755)
        let noInterpreter = writeFile("#!/nonexistent/sh\n", mode: 0o755)
        let emptyLine = writeFile("#!   \n", mode: 0o755)
        defer { for p in [garbage, noInterpreter, emptyLine] { unlink(p) } }
        let cases: [(String, Program.ExecutableError, Errno)] = [
            ("/nonexistent/program", .cannotOpen(.noSuchFileOrDirectory), .noSuchFileOrDirectory),
            ("/tmp", .notRegularFile(.directory), .permissionDenied),
            (fifoPath, .notRegularFile(.fifo), .permissionDenied),
            ("/dev/null", .notRegularFile(.device), .permissionDenied),
            (garbage, .unknownFormat, .execFormatError),
            (noInterpreter, .interpreterCannotRun("/nonexistent/sh", .noSuchFileOrDirectory),
             .noSuchFileOrDirectory),
            (emptyLine, .interpreterCannotRun("", .execFormatError), .execFormatError),
        ]
        for (path, want, errno) in cases {
            do {
                let fd = try Program.openExecutable(at: FilePath(path))
                try? fd.close()
                Issue.record("\(path) opened")
            } catch {
                #expect(error == want, "\(path)")
                #expect(error.errno == errno, "\(path)")
            }
        }
        // Nothing left open: no descriptor of this process names one of
        // the files (the whole table is no measure here: other tests open
        // and close descriptors meanwhile; /dev/null and /tmp are
        // everyone's).
        let open = Set(tableSnapshot().values)
        for (path, _, _) in cases where path != "/dev/null" && path != "/tmp" {
            #expect(!open.contains(path), "\(path) left open")
        }
    }

    @Test func environmentEntries() {
        #expect(Program.Environment.isValidEntry("A=1"))
        #expect(Program.Environment.isValidEntry("A="))
        #expect(Program.Environment.isValidEntry("A==b"))
        #expect(!Program.Environment.isValidEntry("=1"))
        #expect(!Program.Environment.isValidEntry("A"))
        #expect(!Program.Environment.isValidEntry("A=\0b"))
        // A launch refuses what isValidEntry refuses (an empty name too).
        #expect(throws: Errno.invalidArgument) {
            try Program.checkArguments(.init(.path("/bin/true"), environment: .custom(["=1"])))
        }
    }

    @Test func defaultNames() {
        #expect(Executable.path("/usr/bin/env").defaultName == "env")
        #expect(Executable.path("tool").defaultName == "tool")
        #expect(Executable.path("/").defaultName == "/")
        #expect(Executable.name("ls").defaultName == "ls")
        #expect(Executable.descriptor(.standardInput).defaultName == nil)
    }

    /// The configuration form's check, which opens and starts nothing.
    @Test func checkArgumentsOfAConfiguration() {
        let big = String(repeating: "x", count: 131_072)
        #expect(throws: Errno.argListTooLong) {
            try Program.checkArguments(.init(.path("/nonexistent/x"), arguments: [big]))
        }
        #expect(throws: Errno.argListTooLong) {
            try Program.checkArguments(.init(.descriptor(.standardInput),
                                             arguments: .argdata(.str(big))))
        }
        #expect(throws: Never.self) {
            try Program.checkArguments(.init(.name("no-such-program-anywhere"),
                                             arguments: ["a"]))
        }
    }
}
