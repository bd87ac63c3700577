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
        usage: """
            fdrun [--dry-run] [--env NAME=VALUE ...] EXECUTABLE [CONFIG]
            fdrun --socket-activation [--dry-run] [--env NAME=VALUE ...] EXECUTABLE [CONFIG] [-- ARGUMENT ...]
            """,
        discussion: """
            The configuration (CONFIG, or standard input) becomes the program's \
            argdata. Tags give it descriptors: !fd stdin|stdout|stderr|N (one fdrun \
            inherited), !file {path: P, mode: read|write|append|readwrite}, \
            !socket {bind: A} or {connect: A} with type: stream|dgram|seqpacket \
            (A is /path, HOST:PORT or [IPV6]:PORT; HOST and PORT may be names, \
            such as localhost:http-alt, resolved with getaddrinfo when the socket \
            is opened), and !executable. Untagged scalars follow YAML 1.2's core \
            schema. The program gets no other descriptor, and an empty environment \
            but for --env.

            With --socket-activation the program is started as systemd starts a \
            socket-activated service (sd_listen_fds(3)): the configuration is a map \
            whose keys are names and whose values are descriptors (name: !socket \
            {bind: A}, !file or !fd); the program gets fdrun's standard input, \
            output and error as 0, 1 and 2, the map's descriptors at 3, 4, ... in \
            order, the ARGUMENTs after -- as its arguments (no argdata), and \
            LISTEN_FDS, LISTEN_FDNAMES (the keys joined by :) and LISTEN_PID (its \
            pid, which is fdrun's) in its environment.

            fdrun replaces itself with the program (as cloudabi-run did): its exit \
            status, or the signal that ended it, is the program's. Errors before the \
            program starts print file:line:column and exit with status 127, with \
            nothing left open.
            """)

    @Flag(help: "Print the plan (each descriptor and where it comes from, the argdata as YAML, its size, the environment) and start nothing.")
    var dryRun = false

    @Flag(help: "Start the program with systemd's socket activation: CONFIG maps names to descriptors, which become 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID; arguments after --.")
    var socketActivation = false

    @Option(name: .customLong("env"),
            help: ArgumentHelp("Give the program an environment variable (repeatable).",
                               valueName: "NAME=VALUE"))
    var environment: [String] = []

    @Argument(help: "The program to run (a path: PATH is not searched).")
    var executable: String

    @Argument(help: "The YAML configuration (default: standard input).")
    var config: String?

    @Argument(parsing: .postTerminator,
              help: ArgumentHelp("With --socket-activation, the program's arguments.",
                                 valueName: "argument"))
    var arguments: [String] = []

    func run() throws {
        if let bad = environment.first(where: { !Program.Environment.isValidEntry($0) }) {
            throw Failure(message: "fdrun: --env \(quoted(bad)): expected NAME=VALUE")
        }
        if !arguments.isEmpty && !socketActivation {
            throw Failure(message: "fdrun: arguments after -- are for --socket-activation (without it the program's arguments are its argdata, the configuration)")
        }
        let file = config ?? "<stdin>"
        let plan: Plan
        var entries: [(name: String, source: Int)] = []
        do {
            plan = try Plan(parsing: try Plan.read(config), file: file)
            if socketActivation { entries = try plan.activationEntries() }
        } catch let e as ConfigurationError {
            throw Failure(message: "\(e.location): error: \(e.message)")
        } catch let e as ReadError {
            throw Failure(message: "fdrun: " + e.message)
        }
        let program = try openProgram()
        defer { try? program.close() }
        do {
            if dryRun {
                try printPlan(plan, entries)
                return
            }
            let opened = try OpenedDescriptors(plan, executable: program, inherited: inherited)
            var launch = Program.Configuration(
                .descriptor(program), environment: .custom(environment),
                name: Executable.path(FilePath(executable)).defaultName)
            var argdata: Argdata?
            if socketActivation {
                launch.arguments = .socketActivated(arguments, sockets: entries.map {
                    ListeningSocket(name: $0.name, descriptor: opened.descriptors[$0.source])
                }, standardIO: (.standardInput, .standardOutput, .standardError))
            } else {
                argdata = plan.argdata(with: opened.descriptors)
                launch.arguments = .argdata(argdata!)
            }
            let cannotStart = { (error: Errno) in
                // opened closes its descriptors and socket files as it goes.
                Failure(message: "fdrun: cannot start \(quoted(executable)): \(describe(error, argdata))")
            }
            do {
                try Program.checkArguments(launch)
            } catch {
                throw cannotStart(error)
            }
            // Every check done: only now may an existing file be emptied.
            try opened.truncate()
            do {
                try Program.exec(launch)
            } catch {
                throw cannotStart(error)
            }
        } catch let e as ConfigurationError {
            throw Failure(message: "\(e.location): error: \(e.message)")
        }
    }

    /// `--dry-run`: the `!fd` numbers checked and the names resolved (the
    /// dry run's only system calls besides the program's), then the plan.
    func printPlan(_ plan: Plan, _ entries: [(name: String, source: Int)]) throws {
        for source in plan.sources {
            if case .inherited(let n) = source.kind {
                try OpenedDescriptors.checkInherited(n, inherited, source.location)
            }
        }
        let resolved = try plan.resolvedNames()
        let report: String
        if socketActivation {
            let sockets = entries.map { ListeningSocket(name: $0.name, descriptor: .standardInput) }
            // fdrun's pid: the program keeps it (an exec).
            let env = try? Program.Environment.custom(environment)
                .entries(activating: sockets, pid: getpid())
            report = plan.activationReport(
                executable: executable, arguments: arguments, entries: entries,
                environment: env ?? environment, resolved: resolved)
        } else {
            report = plan.report(executable: executable, environment: environment,
                                 resolved: resolved)
        }
        print(terminalSafe(report), terminator: "")
    }

    /// The program's descriptor (``Program/openExecutable(at:)``), its
    /// refusal as fdrun words it.
    func openProgram() throws -> FileDescriptor {
        let shown = quoted(executable)
        do {
            return try Program.openExecutable(at: FilePath(executable))
        } catch {
            switch error {
            case .cannotOpen(let e):
                throw Failure(message: "fdrun: cannot open the program \(shown): \(e)")
            case .cannotExamine(let e):
                throw Failure(message: "fdrun: cannot examine the program \(shown): \(e)")
            case .notRegularFile(.directory):
                throw Failure(message: "fdrun: the program \(shown) is a directory")
            case .notRegularFile(.fifo):
                throw Failure(message: "fdrun: the program \(shown) is a FIFO, not a regular file")
            case .notRegularFile(.socket):
                throw Failure(message: "fdrun: the program \(shown) is a socket, not a regular file")
            case .notRegularFile(.device):
                throw Failure(message: "fdrun: the program \(shown) is a device, not a regular file")
            case .cannotRead(let e):
                throw Failure(message: "fdrun: cannot read the program \(shown): \(e)")
            case .unknownFormat:
                throw Failure(message: "fdrun: the program \(shown) is not an executable (neither ELF nor #!): \(error.errno)")
            case .interpreterCannotRun(let path, let e):
                throw Failure(message: "fdrun: the program \(shown) names the interpreter \(quoted(path)), which cannot be run: \(e)")
            }
        }
    }

    func describe(_ e: Errno, _ argdata: Argdata?) -> String {
        guard e == .argListTooLong else { return "\(e)" }
        guard let argdata else {
            return "\(e) (the arguments and environment cannot travel, or name too many descriptors)"
        }
        let size = argdata.serialize().bytes.count
        return "\(e) (the argdata, \(size) bytes, cannot travel as program arguments, or names too many descriptors)"
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
