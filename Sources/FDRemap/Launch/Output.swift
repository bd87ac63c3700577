import Dispatch
import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a program wrote to one of its descriptors, as an asynchronous
/// sequence of bytes, read from a pipe as the program writes.
///
/// The pipe is read by Dispatch (`DispatchIO`, no thread of its own)
/// into a buffer that grows as needed, so the program never blocks on a
/// full pipe, whatever it writes and however slowly the sequence is
/// consumed; ``chunks`` gives the same bytes in the pieces they were
/// read in, which is faster to consume. The sequence ends when every
/// copy of the pipe's write end is closed: normally when the program
/// (and any child it gave the descriptor to) has exited. Iterate it
/// once.
public struct OutputBytes: AsyncSequence, Sendable {
    /// A byte of the output.
    public typealias Element = UInt8
    /// Reading the sequence never fails: an error reading the pipe (it
    /// has none in practice) ends it.
    public typealias Failure = Never

    /// The output in the pieces it was read in.
    public let chunks: AsyncStream<[UInt8]>

    init(_ chunks: AsyncStream<[UInt8]>) {
        self.chunks = chunks
    }

    /// The iterator, byte by byte over the chunks.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: AsyncStream<[UInt8]>.AsyncIterator
        var chunk: [UInt8] = []
        var index = 0

        /// The next byte, or `nil` at the end (or when the task is
        /// cancelled).
        public mutating func next() async -> UInt8? {
            while index == chunk.count {
                guard let c = await chunks.next() else { return nil }
                chunk = c
                index = 0
            }
            defer { index += 1 }
            return chunk[index]
        }
    }

    /// An iterator over the bytes.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(chunks: chunks.makeAsyncIterator())
    }

    /// Reads `fd` (owned: closed at the end) into the stream.
    static func reading(_ fd: CInt) -> OutputBytes {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let queue = DispatchQueue(label: "FDRemap.OutputBytes")
        let io = DispatchIO(type: .stream, fileDescriptor: fd, queue: queue) { _ in
            close(fd)
        }
        io.setLimit(lowWater: 1)
        io.read(offset: 0, length: Int.max, queue: queue) { done, data, _ in
            if let data, !data.isEmpty { continuation.yield(Array(data)) }
            if done {
                continuation.finish()
                io.close()
            }
        }
        return OutputBytes(stream)
    }
}

/// What ``Program/output(_:at:limit:teardown:)`` collected.
public struct CollectedOutput: Sendable, Hashable {
    /// How the program ended.
    public var termination: Termination
    /// The first bytes it wrote, at most the limit.
    public var bytes: [UInt8]
    /// Whether it wrote more than the limit (the rest was read and
    /// dropped, so that it never blocked).
    public var truncated: Bool

    /// The bytes as UTF-8, ill-formed sequences repaired.
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}

extension Program {
    /// Starts the program of `configuration` with a pipe as its
    /// descriptor `descriptor`, and gives the program and what it writes
    /// there.
    ///
    /// The configuration's arguments must be plain strings: the pipe's
    /// write end takes the place of `descriptors[descriptor]` (which must
    /// exist; pass any descriptor there, `.standardOutput` say), so the
    /// program still has exactly the listed descriptors. This process
    /// keeps no copy of the write end, so the output ends when the
    /// program (and whoever it gave the descriptor to) is done.
    ///
    /// ```swift
    /// let (run, output) = try Program.spawnWithOutput(
    ///     .init(.name("ls"), arguments: ["-l"], environment: .inherit))
    /// for await line in output.chunks { print(line.count, "bytes") }
    /// let end = try await run.wait()
    /// ```
    ///
    /// - Throws: `EINVAL` for arguments that are not
    ///   ``Arguments/strings(_:descriptors:)`` (argdata, socket
    ///   activation) or a `descriptor` out of the list; `pipe2`'s errors (`EMFILE`, `ENFILE`); the errors of
    ///   ``spawn(_:)``, with the pipe closed again.
    public static func spawnWithOutput(_ configuration: Configuration,
                                       at descriptor: Int = 1) throws(Errno) -> (Execution, OutputBytes) {
        guard case .strings(let strings, var descriptors) = configuration.arguments,
              descriptors.indices.contains(descriptor) else { throw .invalidArgument }
        var ends: [CInt] = [-1, -1]
        guard fdr_swift_pipe_cloexec(&ends) == 0 else { throw Errno(rawValue: errno) }
        descriptors[descriptor] = FileDescriptor(rawValue: ends[1])
        var c = configuration
        c.arguments = .strings(strings, descriptors: descriptors)
        let child: ChildProcess
        do {
            child = try spawn(c)
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
        close(ends[1])
        return (child.execution(), OutputBytes.reading(ends[0]))
    }

    /// Runs the program of `configuration` to its end and collects what
    /// it writes to its descriptor `descriptor`, at most `limit` bytes
    /// (as swift-subprocess's `.bytes(limit:)`): more is read and
    /// dropped, never left to block the program. The launch is
    /// ``spawnWithOutput(_:at:)``'s (`pipe2`, then C's
    /// `program_spawn_raw`).
    ///
    /// ```swift
    /// let out = try await Program.output(
    ///     .init(.name("uname"), arguments: ["-r"], environment: .inherit))
    /// print(out.string, out.termination)
    /// ```
    ///
    /// Cancelling the task ends the collection and tears the program
    /// down by `teardown`, as ``Execution/wait(teardown:)`` does; it is
    /// reaped before the call returns.
    ///
    /// - Throws: As ``spawnWithOutput(_:at:)`` and
    ///   ``Execution/wait(teardown:)``.
    public static func output(_ configuration: Configuration, at descriptor: Int = 1,
                              limit: Int = 128 * 1024,
                              teardown: some Sequence<TeardownStep> & Sendable = [TeardownStep]())
        async throws(Errno) -> CollectedOutput {
        let (run, output) = try spawnWithOutput(configuration, at: descriptor)
        var bytes: [UInt8] = []
        var truncated = false
        for await chunk in output.chunks {
            let room = max(0, limit - bytes.count)
            bytes += chunk.prefix(room)
            if chunk.count > room { truncated = true }
        }
        let end = try await run.wait(teardown: teardown)
        return CollectedOutput(termination: end, bytes: bytes, truncated: truncated)
    }
}
