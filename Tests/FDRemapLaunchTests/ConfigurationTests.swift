// Program.Configuration: the executable by path, descriptor or PATH
// search; plain string arguments with an explicit descriptor list; the
// environment inherited, custom or updated (a NUL refused); the working
// directory; a new process group or session. Each on a real probe that
// reports what it got.
import CFDRemapHost
import FDRemap
import Glibc
import SystemPackage
import Testing

/// Runs the probe as `config` says with its report to descriptor
/// `report` of the child (the probe's command given as plain strings),
/// awaits it, and parses the report in `memfd`.
func runConfigured(_ config: Program.Configuration, memfd: Int32,
                   sourceLocation: SourceLocation = #_sourceLocation) async throws -> (Int32, ProbeReport) {
    let child = try Program.spawn(config)
    let pid = child.pid
    #expect(try await child.wait() == .exited(0), sourceLocation: sourceLocation)
    let r = ProbeReport(Probe.read(memfd))
    #expect(r.ended, "no report:\n\(r.text)", sourceLocation: sourceLocation)
    return (pid, r)
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A fresh directory under /tmp, removed (with its files) by the caller.
func tempDirectory() -> String {
    var template = Array("/tmp/fdremap-dir-XXXXXX".utf8CString)
    let p = mkdtemp(&template)!
    return String(cString: p)
}

@Suite struct ConfigurationTests {
    @Test func plainStringsWithExactlyTheListedDescriptors() async throws {
        let o = Opened()
        let m = o.memfd()
        let other = o.memfd()          // open here, never passed
        _ = other
        let devnull = o.open("/dev/null")
        let config = Program.Configuration(
            .path(FilePath(Probe.path)),
            arguments: .strings(["report", "1"], descriptors: [FileDescriptor(rawValue: devnull),
                                                               FileDescriptor(rawValue: m)]))
        let (pid, r) = try await runConfigured(config, memfd: m)
        #expect(r.pid == pid)
        #expect(r.args.map(text) == ["fdremap-probe", "report", "1"])
        #expect(r.env.isEmpty)
        expectTable(r, sources: [FileID(fd: devnull), FileID(fd: m)])
    }

    @Test func byDescriptorWithAName() async throws {
        let o = Opened()
        let m = o.memfd()
        let exe = o.open(Probe.path)
        var config = Program.Configuration(
            .descriptor(FileDescriptor(rawValue: exe)),
            arguments: .strings(["report", "0"], descriptors: [FileDescriptor(rawValue: m)]))
        config.name = "given-name"
        let (_, r) = try await runConfigured(config, memfd: m)
        #expect(r.args.map(text) == ["given-name", "report", "0"])
        expectTable(r, sources: [FileID(fd: m)])
    }

    @Test func theArgdataFormStillPassesItsTree() async throws {
        let o = Opened()
        let m = o.memfd()
        let config = Program.Configuration(
            .path(FilePath(Probe.path)),
            arguments: .argdata(.fd(FileDescriptor(rawValue: m))),
            environment: .custom(["FDREMAP_PROBE": "report 0"]))
        let (_, r) = try await runConfigured(config, memfd: m)
        expectTable(r, sources: [FileID(fd: m)])
        #expect(r.env.map(text) == ["FDREMAP_PROBE=report 0"])
    }

    @Test func environmentInheritedAndUpdated() async throws {
        let o = Opened()
        let m = o.memfd()
        let config = Program.Configuration(
            .path(FilePath(Probe.path)),
            arguments: .strings(["report", "0"], descriptors: [FileDescriptor(rawValue: m)]),
            environment: .inherit.updating(["FDREMAP_ADDED": "yes", "HOME": nil]))
        let (_, r) = try await runConfigured(config, memfd: m)
        let env = r.env.map(text)
        #expect(env.contains("FDREMAP_ADDED=yes"))
        #expect(!env.contains { $0.hasPrefix("HOME=") })
        if let path = getenv("PATH") {
            #expect(env.contains("PATH=" + String(cString: path)))
        }
    }

    /// In a process of its own, so that the table and the children are
    /// this test's alone: nothing starts, nothing is left behind.
    @Test func aNulInTheEnvironmentIsRefused() async {
        await #expect(processExitsWith: .success) {
            let cases: [Program.Environment] = [
                .custom(["A": "x\0y"]), .custom(["A\0B": "x"]), .custom(["A=B": "x"]),
                .custom(["": "x"]), .custom(["A=x\0y"]), .custom(["no-equals-sign"]),
                .inherit.updating(["A": "\0"]),
            ]
            let o = Opened()
            let m = o.memfd()
            let before = tableSnapshot()
            for env in cases {
                let config = Program.Configuration(
                    .path(FilePath(Probe.path)),
                    arguments: .strings(["report", "0"], descriptors: [FileDescriptor(rawValue: m)]),
                    environment: env)
                #expect(throws: Errno.invalidArgument) { _ = try Program.spawn(config) }
            }
            #expect(Probe.read(m) == "", "a child ran")
            #expect(tableSnapshot() == before, "a descriptor was left behind")
            #expect(hasNoChildren())
        }
    }

    @Test func aNulInAnArgumentOrNameIsRefused() throws {
        let o = Opened()
        let m = o.memfd()
        let fds = [FileDescriptor(rawValue: m)]
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawn(.init(.path(FilePath(Probe.path)),
                                        arguments: .strings(["report\00"], descriptors: fds)))
        }
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawn(.init(.path(FilePath(Probe.path)),
                                        arguments: .strings(["report", "0"], descriptors: fds),
                                        name: "a\0b"))
        }
        // The old Options too: refused, not cut short.
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawn(FilePath(Probe.path), argdata: .fd(fds[0]),
                                  options: .init(environment: ["FDREMAP_PROBE=report 0\0x"]))
        }
        #expect(Probe.read(m) == "")
    }

    @Test func pathSearchSkipsWhatItCannotRunAndFindsTheProgram() async throws {
        let o = Opened()
        let m = o.memfd()
        let d1 = tempDirectory(), d2 = tempDirectory(), d3 = tempDirectory()
        defer {
            for p in ["\(d1)/fdr-tool", "\(d2)/fdr-tool", "\(d3)/fdr-tool"] { unlink(p) }
            for d in [d1, d2, d3] { rmdir(d) }
        }
        // d1: not executable; d2: a directory of that name; d3: the probe.
        let w = open("\(d1)/fdr-tool", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        close(w)
        mkdir("\(d2)/fdr-tool", 0o755)
        #expect(symlink(Probe.path, "\(d3)/fdr-tool") == 0)
        let fds = [FileDescriptor(rawValue: m)]
        let config = Program.Configuration(
            .name("fdr-tool"),
            arguments: .strings(["report", "0"], descriptors: fds),
            environment: .custom(["PATH": "/nonexistent:\(d1):\(d2):\(d3)"]))
        let (_, r) = try await runConfigured(config, memfd: m)
        #expect(r.args.map(text) == ["fdr-tool", "report", "0"])
        expectTable(r, sources: [FileID(fd: m)])

        // Not found anywhere: ENOENT; found but never executable: EACCES.
        #expect(throws: Errno.noSuchFileOrDirectory) {
            _ = try Program.spawn(.init(.name("fdr-tool"), arguments: .strings([], descriptors: fds),
                                        environment: .custom(["PATH": "/nonexistent"])))
        }
        #expect(throws: Errno.permissionDenied) {
            _ = try Program.spawn(.init(.name("fdr-tool"), arguments: .strings([], descriptors: fds),
                                        environment: .custom(["PATH": "\(d1):\(d2)"])))
        }
        #expect(throws: Errno.invalidArgument) {
            _ = try Program.spawn(.init(.name("bin/fdr-tool"), arguments: .strings([], descriptors: fds)))
        }
    }

    /// The short form, by name in the inherited PATH, with the standard
    /// descriptors (an array literal of strings).
    @Test func aProgramByNameInTheInheritedPath() async throws {
        let ok = try Program.spawn(.name("true"), arguments: [], environment: .inherit)
        #expect(try await ok.wait() == .exited(0))
        let no = try Program.spawn(.name("false"), arguments: ["ignored"], environment: .inherit)
        #expect(try await no.wait() == .exited(1))
    }

    @Test func workingDirectoryByPathAndByDescriptor() async throws {
        let o = Opened()
        let m = o.memfd()
        let fds = [FileDescriptor(rawValue: m)]
        let before = FileManagerLess.cwd()
        var config = Program.Configuration(.path(FilePath(Probe.path)),
                                           arguments: .strings(["report", "0"], descriptors: fds),
                                           workingDirectory: .path("/tmp"))
        let (_, r) = try await runConfigured(config, memfd: m)
        #expect(r.lines("cwd").first.map { String($0[1]) } == "/tmp")
        expectTable(r, sources: [FileID(fd: m)])

        let m2 = o.memfd()
        let dir = o.open("/usr", Program.openPathFlag | O_DIRECTORY)
        config.arguments = .strings(["report", "0"], descriptors: [FileDescriptor(rawValue: m2)])
        config.workingDirectory = .descriptor(FileDescriptor(rawValue: dir))
        let (_, r2) = try await runConfigured(config, memfd: m2)
        #expect(r2.lines("cwd").first.map { String($0[1]) } == "/usr")
        // The directory's descriptor is not kept.
        expectTable(r2, sources: [FileID(fd: m2)])
        #expect(FileManagerLess.cwd() == before, "the launcher's own cwd changed")

    }

    @Test func aWorkingDirectoryThatFailsLeavesNothingBehind() async {
        await #expect(processExitsWith: .success) {
            let o = Opened()
            let m = o.memfd()
            let before = tableSnapshot()
            var config = Program.Configuration(
                .path(FilePath(Probe.path)),
                arguments: .strings(["report", "0"], descriptors: [FileDescriptor(rawValue: m)]),
                workingDirectory: .path("/nonexistent-fdremap"))
            #expect(throws: Errno.noSuchFileOrDirectory) { _ = try Program.spawn(config) }
            config.workingDirectory = .path(FilePath(Probe.path))
            #expect(throws: Errno.notDirectory) { _ = try Program.spawn(config) }
            config.workingDirectory = .descriptor(FileDescriptor(rawValue: 850))
            #expect(throws: Errno.badFileDescriptor) { _ = try Program.spawn(config) }
            #expect(tableSnapshot() == before)
            #expect(hasNoChildren(), "a failed child was left behind")
            #expect(Probe.read(m) == "", "a failed child ran")
        }
    }

    @Test func aNewProcessGroupOrSession() async throws {
        let o = Opened()
        let fds = { (m: Int32) in [FileDescriptor(rawValue: m)] }
        let m1 = o.memfd()
        let (pid1, r1) = try await runConfigured(
            .init(.path(FilePath(Probe.path)), arguments: .strings(["report", "0"], descriptors: fds(m1)),
                  processGroup: .newGroup), memfd: m1)
        let g1 = r1.lines("pgid").first
        #expect(g1.map { String($0[1]) } == "\(pid1)")
        #expect(g1.map { String($0[3]) } == "\(getsid(0))")

        let m2 = o.memfd()
        let (pid2, r2) = try await runConfigured(
            .init(.path(FilePath(Probe.path)), arguments: .strings(["report", "0"], descriptors: fds(m2)),
                  processGroup: .newSession), memfd: m2)
        let g2 = r2.lines("pgid").first
        #expect(g2.map { String($0[1]) } == "\(pid2)")
        #expect(g2.map { String($0[3]) } == "\(pid2)")

        // Joining the group of a running leader.
        let m3 = o.memfd()
        let leader = try Program.spawn(.init(.path(FilePath(Probe.path)),
                                             arguments: .strings(["hold", "0", "exit"], descriptors: fds(m3)),
                                             processGroup: .newGroup)).execution()
        #expect(await waitForText(m3, "ready"))
        let m4 = o.memfd()
        let (_, r4) = try await runConfigured(
            .init(.path(FilePath(Probe.path)), arguments: .strings(["report", "0"], descriptors: fds(m4)),
                  processGroup: .join(leader.processIdentifier)), memfd: m4)
        #expect(r4.lines("pgid").first.map { String($0[1]) } == "\(leader.processIdentifier)")
        try leader.send(signal: .terminate)
        #expect(try await leader.wait() == .exited(3))

        // A group that does not exist: the child's setpgid says ESRCH or EPERM.
        #expect(throws: Errno.self) {
            _ = try Program.spawn(.init(.path(FilePath(Probe.path)),
                                        arguments: .strings(["report", "0"], descriptors: fds(m4)),
                                        processGroup: .join(0x3fffff)))
        }
        // The process's own group and session are untouched.
        #expect(getpgrp() != pid1 && getsid(0) != pid2)
    }

    @Test func execRefusesASessionOrGroupWithoutStartingAnything() throws {
        let o = Opened()
        let m = o.memfd()
        let exe = o.open(Probe.path)
        let fds: [Int32] = [m]
        for flag in [PROGRAM_SETSID, PROGRAM_SETPGROUP] {
            var attr = program_attr()
            attr.pa_flags = UInt32(flag)
            let error = fds.withUnsafeBufferPointer { f in
                program_exec_raw(exe, "report\00", 8, f.baseAddress, f.count, &attr)
            }
            #expect(error == EINVAL)
        }
        var attr = program_attr()
        attr.pa_flags = UInt32(PROGRAM_SETSID | PROGRAM_SETPGROUP)
        var pid: pid_t = -1
        let error = fds.withUnsafeBufferPointer { f in
            program_spawn_raw(exe, "report\00", 8, f.baseAddress, f.count, &attr, &pid)
        }
        #expect(error == EINVAL)
        #expect(Probe.read(m) == "")
    }
}

/// The working directory, without Foundation.
enum FileManagerLess {
    static func cwd() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
        return getcwd(&buf, buf.count).map { String(cString: $0) } ?? "?"
    }
}

extension Program {
    /// O_PATH, for the tests.
    static var openPathFlag: Int32 { fdr_swift_o_path() }
}
