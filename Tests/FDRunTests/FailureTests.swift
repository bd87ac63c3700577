// fdrun's failures as a process: status 127, the message with file, line
// and column, nothing started, nothing left (no socket file, no created
// file), and its dry run, which starts and opens nothing.
import FDRemap
import FDRunConfig
import Foundation
import Glibc
import Testing

@Suite struct FailureTests {
    /// Each configuration fails with status 127 and this message on
    /// standard error; the program (the probe, which would exit 0) never
    /// runs, and nothing is written to standard output.
    static let cases: [(String, String)] = [
        ("a: !file {path: /nonexistent/x}",
         "cfg.yaml:1:4: error: !file: cannot open \"/nonexistent/x\" for read: No such file or directory"),
        ("a: !fle {path: x}", "cfg.yaml:1:4: error: unknown tag !fle"),
        ("a: !fd 900", "cfg.yaml:1:4: error: !fd 900: descriptor 900 is not open (fdrun did not inherit it)"),
        ("a: [1, 2", "cfg.yaml:2:1: error: did not find expected ',' or ']' while parsing a flow sequence"),
        // A name is resolved when the socket is opened: the error is at the tag.
        ("a: !socket {connect: \"localhost:no-such-service\"}",
         "cfg.yaml:1:4: error: !socket connect localhost:no-such-service (stream): cannot resolve \"localhost:no-such-service\": Servname not supported for ai_socktype"),
        ("a: !socket {connect: \"1.2.3.4:-1\"}",
         "cfg.yaml:1:13: error: \"1.2.3.4:-1\" is not a socket address: /path, HOST:PORT or [IPV6]:PORT (HOST and PORT may be names)"),
        ("a: !socket {connect: /nonexistent/s.sock}",
         "cfg.yaml:1:4: error: !socket connect /nonexistent/s.sock (stream): cannot connect: No such file or directory"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            + "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            + "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
         "cfg.yaml:6:33: error: more than 1000000 values"),
        (String(repeating: "[", count: 50_000), "error: maps and sequences nested more than 1000 deep"),
        // A verbatim tag's %-escapes decode to ESC: shown escaped, never raw.
        ("a: !<tag:x%1b[2J%1b[31mRED> 1", "error: unknown tag !<tag:x\\x1b[2J\\x1b[31mRED> ("),
    ]

    @Test(arguments: cases)
    func fails(_ config: String, _ message: String) {
        let dir = TempDir()
        let path = dir.write("cfg.yaml", config)
        let run = fdrun([probePath, path])
        #expect(run.ending == .exited(127))
        #expect(run.stderr.hasPrefix(dir.path + "/" + message) || run.stderr.contains(message),
                "\(run.stderr)")
        #expect(run.stdout.isEmpty)
        #expect(!run.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    /// Whether text holds a character a terminal could act on (C0 but
    /// the newline, DEL, C1).
    static func hasControl(_ text: String) -> Bool {
        text.unicodeScalars.contains {
            ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value)
        }
    }

    /// User strings from everywhere but the configuration's contents (its
    /// path, --env, an unknown option, a socket path, the program's path)
    /// reach stderr and the dry run's stdout escaped, never raw.
    @Test func hostileBytesNeverReachTheTerminalRaw() throws {
        let dir = TempDir()
        let esc = "\u{1b}[2J\u{1b}[31m\u{9b}31m"
        let good = dir.write("cfg.yaml", "a: 1\n")
        let bad = dir.write("bad\(esc).yaml", "a: [1\n")
        let program = dir.path + "/prog\(esc)"
        try #require(symlink(probePath, program) == 0)
        let runs: [([String], Int32, String)] = [
            ([probePath, dir.path + "/none\(esc).yaml"], 127, "cannot open the configuration"),
            (["--env", "X\(esc)", probePath, good], 127, "expected NAME=VALUE"),
            (["--\(esc)", probePath, good], 127, "fdrun: "),
            ([probePath, bad], 127, "error: did not find expected"),
            ([probePath, dir.write("sock.yaml", "a: !socket {connect: \"/nonexistent/\\e[31m.sock\"}\n")],
             127, "cannot connect"),
            (["--dry-run", "--env", "A=\(esc)", program, good], 0, ""),
        ]
        for (args, status, message) in runs {
            let run = fdrun(args)
            #expect(run.ending == .exited(status), "\(args): \(run.stderr)")
            #expect(message.isEmpty || run.stderr.contains(message), "\(args): \(run.stderr)")
            #expect(!Self.hasControl(run.stderr), "\(args): raw in stderr: \(run.stderr.debugDescription)")
            #expect(!Self.hasControl(run.stdout), "\(args): raw in stdout: \(run.stdout.debugDescription)")
        }
    }

    /// A descriptor fdrun opened itself is refused even though it is open:
    /// started with exactly 0, 1 and 2 and its configuration on standard
    /// input, fdrun's own descriptor 4 is the program it opened (3 was
    /// the O_PATH look at it, closed since).
    @Test func descriptorFdrunOpenedItself() {
        let run = fdrun([probePath], stdin: "report: !fd 4\n")
        #expect(run.ending == .exited(127))
        #expect(run.stderr == "<stdin>:1:9: error: !fd 4: descriptor 4 was not open when fdrun started (fdrun opened it itself)\n")
    }

    /// Failing after a socket was bound and a file created: both are
    /// removed, so a failed fdrun leaves nothing behind.
    @Test func failureRemovesWhatItCreated() {
        let dir = TempDir()
        let path = dir.write("cfg.yaml", """
            a: !socket {bind: \(dir.path)/s.sock}
            b: !file {path: \(dir.path)/new.log, mode: write}
            c: !file {path: \(dir.path)/missing}
            """)
        let run = fdrun([probePath, path])
        #expect(run.ending == .exited(127))
        #expect(run.stderr.contains("cfg.yaml:3:4: error: !file: cannot open"))
        #expect(!dir.exists("s.sock") && !dir.exists("new.log"))
    }

    /// A file that existed is neither truncated away nor removed by a
    /// failure (only files fdrun created are).
    @Test func failureKeepsExistingFiles() {
        let dir = TempDir()
        dir.write("old.log", "keep\n")
        let path = dir.write("cfg.yaml", """
            a: !file {path: \(dir.path)/old.log, mode: append}
            c: !fd 900
            """)
        #expect(fdrun([probePath, path]).ending == .exited(127))
        #expect((try? String(contentsOfFile: dir.path + "/old.log", encoding: .utf8)) == "keep\n")
    }

    @Test(arguments: [
        (["/nonexistent/program"], "fdrun: cannot open the program \"/nonexistent/program\": No such file or directory\n"),
        (["/tmp"], "fdrun: the program \"/tmp\" is a directory\n"),
        ([probePathForTable, "/nonexistent.yaml"], "fdrun: cannot open the configuration \"/nonexistent.yaml\": No such file or directory\n"),
        (["--env", "NOEQUALS", probePathForTable], "fdrun: --env \"NOEQUALS\": expected NAME=VALUE\n"),
        (["--env", "=x", probePathForTable], "fdrun: --env \"=x\": expected NAME=VALUE\n"),
    ])
    func commandLine(_ arguments: [String], _ message: String) {
        let run = fdrun(arguments, stdin: "{}")
        #expect(run.ending == .exited(127))
        #expect(run.stderr == message)
    }

    @Test func usage() {
        let run = fdrun([])
        #expect(run.ending == .exited(127))
        #expect(run.stderr.hasPrefix("fdrun: Missing expected argument '<executable>'\nUsage: fdrun [--dry-run]"))
        let help = fdrun(["--help"])
        #expect(help.ending == .exited(0) && help.stdout.contains("USAGE: fdrun"))
    }

    /// Argdata larger than Linux lets program arguments be (3 MB here;
    /// 2 MiB with an 8 MiB stack, 6 MiB at most): E2BIG before anything
    /// starts, with its size.
    @Test func argdataTooLargeToTravel() {
        let dir = TempDir()
        let scalar = String(repeating: "x", count: 100_000)
        let path = dir.write("cfg.yaml", "- !fd stdout\n" + String(repeating: "- \(scalar)\n", count: 30))
        let run = fdrun([probePath, path])
        #expect(run.ending == .exited(127))
        #expect(run.stderr == "fdrun: cannot start \"\(probePath)\": Argument list too long (the argdata, 3000157 bytes, cannot travel as program arguments, or names too many descriptors)\n")
        #expect(run.stdout.isEmpty)
    }

    /// A program execve(2) would refuse is refused before anything is
    /// opened, status 127: text that is neither ELF nor `#!`, and a `#!`
    /// whose interpreter is missing (`%@` stands for the program's path).
    @Test(arguments: [
        ("just text\n", "fdrun: the program \"%@\" is not an executable (neither ELF nor #!): Exec format error\n"),
        ("#!/nonexistent/sh -e\necho hi\n",
         "fdrun: the program \"%@\" names the interpreter \"/nonexistent/sh\", which cannot be run: No such file or directory\n"),
    ])
    func programThatCannotRun(_ contents: String, _ message: String) {
        let dir = TempDir()
        let path = dir.write("program", contents)
        chmod(path, 0o755)
        let run = fdrun([path], stdin: "a: 1")
        #expect(run.ending == .exited(127))
        #expect(run.stderr == message.replacingOccurrences(of: "%@", with: path), "\(run.stderr)")
    }

    /// A failed run leaves an existing file opened with `mode: write`
    /// exactly as it was: whether a later descriptor fails, the program
    /// cannot start, or the argdata is too large to travel (E2BIG: 300 KB
    /// of strings, past the 256 KiB a proc_exec carries). The old code
    /// emptied it in all three cases.
    @Test(arguments: ["bad-fd", "bad-program", "too-large"])
    func failureKeepsFileOpenedForWriting(_ how: String) {
        let dir = TempDir()
        dir.write("keep.txt", "important\n")
        let notProgram = dir.write("not-a-program", "just text\n")
        chmod(notProgram, 0o755)
        let b = how == "bad-fd" ? "!fd 900"
            : how == "too-large" ? "[" + Array(repeating: String(repeating: "x", count: 100_000), count: 3)
                .joined(separator: ", ") + "]" : "!fd 1"
        let config = dir.write("cfg.yaml", """
            a: !file {path: \(dir.path)/keep.txt, mode: write}
            b: \(b)
            """)
        let run = fdrun([how == "bad-program" ? notProgram : probePath, config])
        #expect(run.ending == .exited(127))
        #expect((try? String(contentsOfFile: dir.path + "/keep.txt", encoding: .utf8)) == "important\n")
        if how == "too-large" { #expect(run.stderr.contains("Argument list too long"), "\(run.stderr)") }
    }

    /// Connecting to a Unix socket whose server never accepts and whose
    /// listen queue is full fails at once with status 127; a blocking
    /// connect waited for an accept forever (the old code timed out here).
    @Test func connectToAFullListenQueueFailsAtOnce() throws {
        let dir = TempDir()
        let path = dir.path + "/full.sock"
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sun.sun_path) { _ = strcpy($0.baseAddress!.assumingMemoryBound(to: CChar.self), path) }
        let size = socklen_t(MemoryLayout<sockaddr_un>.size)
        func connectTo(_ fd: CInt) -> CInt {
            withUnsafePointer(to: &sun) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } }
        }
        let server = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(server) }
        let bound = withUnsafePointer(to: &sun) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, size) } }
        try #require(bound == 0 && listen(server, 0) == 0)
        // Fill the queue: non-blocking clients until one is refused.
        var clients: [CInt] = []
        defer { clients.forEach { close($0) } }
        for _ in 0..<16 {
            let c = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
            clients.append(c)
            if connectTo(c) != 0 { break }
        }
        try #require(errno == EAGAIN, "the queue did not fill")
        let config = dir.write("cfg.yaml", "a: !socket {connect: \(path)}\n")
        let run = fdrun([probePath, config], timeout: 10)
        #expect(run.ending == .exited(127))
        #expect(run.stderr.contains("cannot connect (the server's listen queue is full)"), "\(run.stderr)")
    }

    /// `mode: write` through a dangling symbolic link creates its target,
    /// as a shell's `>` does (chains too); a run that then fails removes
    /// the target it created and leaves the link. Before, the create's
    /// O_EXCL refused the link with "File exists".
    @Test(arguments: [true, false])
    func danglingSymlinkCreatesItsTarget(_ succeed: Bool) {
        let dir = TempDir()
        #expect(symlink("middle", dir.path + "/link") == 0)
        #expect(symlink(dir.path + "/out.txt", dir.path + "/middle") == 0)
        let config = dir.write("cfg.yaml", """
            a: !file {path: \(dir.path)/link, mode: write}
            b: !fd \(succeed ? 1 : 900)
            """)
        let run = fdrun(["/bin/true", config])
        #expect(run.ending == .exited(succeed ? 0 : 127), "\(run.stderr)")
        #expect(dir.exists("out.txt") == succeed)
        var st = stat()
        #expect(lstat(dir.path + "/link", &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
    }

    /// A run that starts empties an existing file opened with
    /// `mode: write`, as a shell's `>` does.
    @Test func successfulRunTruncates() {
        let dir = TempDir()
        dir.write("out.txt", "old contents that must go\n")
        let config = dir.write("cfg.yaml", "a: !file {path: \(dir.path)/out.txt, mode: write}\n")
        let run = fdrun(["/bin/true", config])
        #expect(run.ending == .exited(0), "\(run.stderr)")
        #expect((try? String(contentsOfFile: dir.path + "/out.txt", encoding: .utf8)) == "")
    }

    /// A FIFO, socket or device as the program: refused at once with
    /// status 127, in a dry run too (a FIFO hung fdrun forever before).
    @Test(arguments: [false, true])
    func programNotARegularFile(_ dryRun: Bool) {
        let dir = TempDir()
        let fifo = dir.path + "/f"
        #expect(mkfifo(fifo, 0o755) == 0)
        let config = dir.write("cfg.yaml", "a: 1\n")
        for program in [fifo, "/dev/null"] {
            let run = fdrun((dryRun ? ["--dry-run"] : []) + [program, config], timeout: 20)
            #expect(run.ending == .exited(127))
            let what = program == fifo ? "a FIFO" : "a device"
            #expect(run.stderr == "fdrun: the program \"\(program)\" is \(what), not a regular file\n", "\(run.stderr)")
        }
    }
}

/// The probe's path, for argument tables (evaluated before tests run).
let probePathForTable = probePath

@Suite struct DryRunTests {
    /// The plan, exactly; nothing opened, bound, created or started.
    @Test func printsThePlan() throws {
        let dir = TempDir()
        let path = dir.write("cfg.yaml", """
            out: !fd stdout
            log: !file {path: \(dir.path)/new.log, mode: append}
            listen: !socket {bind: \(dir.path)/s.sock}
            peer: !socket {connect: "[::1]:443", type: dgram}
            self: !executable
            again: !fd 1
            n: [1, 2.5, "x"]
            """)
        let run = fdrun(["--dry-run", "--env", "A=1", probePath, path])
        let config = try String(contentsOfFile: path, encoding: .utf8)
        let size = try Plan(parsing: Array(config.utf8), file: path).argdata.serialize().bytes.count
        #expect(run.ending == .exited(0), "\(run.stderr)")
        #expect(run.stdout == """
            program: \(probePath)
            descriptors: 5
              0: !fd 1 (stdout): fdrun's descriptor 1  (\(path):1:6)
              1: !file "\(dir.path)/new.log" opened append  (\(path):2:6)
              2: !socket unix stream listening on \(dir.path)/s.sock  (\(path):3:9)
              3: !socket inet6 dgram connected to [::1]:443  (\(path):4:7)
              4: !executable: the program's own file  (\(path):5:7)
            argdata: \(size) bytes
            %TAG ! tag:nuxi.nl,2015:cloudabi/
            ---
            !!map {
              ? !!str "out"
              : !fd "0",
              ? !!str "log"
              : !fd "1",
              ? !!str "listen"
              : !fd "2",
              ? !!str "peer"
              : !fd "3",
              ? !!str "self"
              : !fd "4",
              ? !!str "again"
              : !fd "0",
              ? !!str "n"
              : !!seq [
                !!int "1",
                !!float "2.5",
                !!str "x",
              ],
            }
            environment: 1 variables
              A=1

            """)
        #expect(!dir.exists("new.log") && !dir.exists("s.sock"))
    }

    /// The dry run still checks what needs no side effect: an `!fd` that
    /// was not inherited is an error.
    @Test func checksInheritedDescriptors() {
        let run = fdrun(["--dry-run", probePath], stdin: "a: !fd 900\n")
        #expect(run.ending == .exited(127))
        #expect(run.stderr.hasPrefix("<stdin>:1:4: error: !fd 900: descriptor 900 is not open"))
        #expect(run.stdout.isEmpty)
    }
}
