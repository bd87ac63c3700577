import Dispatch
import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a program wrote to one of its descriptors, as an asynchronous
/// sequence of bytes, read from a pipe when the sequence is consumed.
///
/// The pipe is read on demand, as swift-subprocess's
/// `AsyncBufferSequence` reads it: each time the consumer asks for more
/// and nothing is left of the last piece, one `read(2)` of at most 64 KiB
/// on the pipe's read end (made non-blocking, `O_NONBLOCK`). When the
/// pipe is empty the consumer waits for it to become readable on a
/// Dispatch read source (`DispatchSource.makeReadSource`, the epoll of
/// Dispatch's own event thread: no thread per program), which is
/// suspended while nobody waits. Nothing is read ahead, so this process
/// holds at most one piece of the output at a time, and a program that
/// writes faster than the sequence is consumed blocks on the full pipe
/// (as it would writing to any pipe) until the consumer reads again.
/// ``chunks`` gives the same bytes in the pieces they were read in,
/// which is faster to consume.
///
/// The sequence ends when every copy of the pipe's write end is closed:
/// normally when the program (and any child it gave the descriptor to)
/// has exited. Iterate it once: copies of the sequence and its iterators
/// share the one pipe.
///
/// The sequence owns the read end and closes it (`close(2)`) once: at
/// the end of the output, or when the last copy of the sequence and of
/// its iterators goes away before the end. A program that writes to a
/// pipe whose read end is closed gets `SIGPIPE` (or `EPIPE`, when it
/// ignores the signal), which is how a dropped output ends one that
/// keeps writing.
public struct OutputBytes: AsyncSequence, Sendable {
    /// A byte of the output.
    public typealias Element = UInt8
    /// Reading the sequence never fails: see ``Chunks``.
    public typealias Failure = Never

    /// The output in the pieces it was read in.
    public let chunks: Chunks

    init(_ pipe: PipeReader) {
        chunks = Chunks(Owner(pipe))
    }

    /// The output in the pieces it was read in: each element is what one
    /// `read(2)` of at most 64 KiB returned, read when it is asked for.
    ///
    /// Iterating never fails. A pipe's read end fails `read(2)` only with
    /// `EAGAIN` (the iterator then waits for the pipe to become readable)
    /// and `EINTR` (it reads again); the other errors (`EBADF`, `EFAULT`,
    /// `EINVAL`, `EIO`) cannot happen on the descriptor the sequence owns,
    /// and should one happen it ends the sequence, as the end of the
    /// output does, rather than make every `for await` a `for try await`.
    ///
    /// When the iterating task is cancelled, ``AsyncIterator/next()``
    /// returns `nil` at once (a waiting one wakes up), and so does every
    /// later call: the sequence has ended for every copy, as an
    /// `AsyncStream` does. The read end stays open until the last copy
    /// goes away.
    public struct Chunks: AsyncSequence, Sendable {
        /// A piece of the output, never empty.
        public typealias Element = [UInt8]
        /// Reading the sequence never fails.
        public typealias Failure = Never

        let owner: Owner

        init(_ owner: Owner) {
            self.owner = owner
        }

        /// The iterator over the pieces.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let owner: Owner

            /// The next piece: at most one `read(2)`, after waiting for
            /// the pipe to become readable when it is empty; `nil` at the
            /// end of the output or when the task is cancelled.
            public mutating func next() async -> [UInt8]? {
                await owner.pipe.next()
            }
        }

        /// An iterator over the pieces.
        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(owner: owner)
        }
    }

    /// The iterator, byte by byte over the chunks.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: Chunks.AsyncIterator
        var chunk: [UInt8] = []
        var index = 0

        /// The next byte, or `nil` at the end (or when the task is
        /// cancelled). Reads the pipe (`read(2)`) only when the last
        /// piece is used up.
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

    /// Holds the pipe for every copy of the sequence and its iterators;
    /// the last one to go closes it (the pipe itself is kept alive by its
    /// Dispatch source's handlers until then, so it cannot be the owner).
    final class Owner: Sendable {
        let pipe: PipeReader

        init(_ pipe: PipeReader) {
            self.pipe = pipe
        }

        deinit {
            pipe.close()
        }
    }
}

/// A pipe's non-blocking read end, read on demand, and the Dispatch read
/// source that wakes whoever waits for it to become readable.
///
/// The source is resumed only while someone waits (it is created
/// inactive, and its handler suspends it again), so an unread pipe costs
/// no wakeups. The descriptor is closed by the source's cancel handler,
/// as Dispatch requires, once: after ``close()`` marked it closed, under
/// the lock that every `read(2)` holds, so no read can reach a closed or
/// reused descriptor number.
final class PipeReader: @unchecked Sendable {
    // @unchecked: fd and source never change; everything that does is
    // under state's lock, and Dispatch's suspend/resume/cancel are
    // thread-safe (they are only called under the lock, which keeps the
    // source's suspension count balanced).

    /// The largest piece one read returns: a default pipe's capacity.
    static let chunkSize = 64 * 1024

    private struct State {
        /// Tasks waiting for the pipe to become readable.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextID = 0
        /// Whether the source is resumed (it starts inactive).
        var armed = false
        /// The end was read or an error seen: every next() is nil.
        var ended = false
        /// A task was cancelled: every next() is nil (the pipe stays
        /// open until its owner goes away).
        var cancelled = false
        /// The source is cancelled and the descriptor closed or about to
        /// be: nothing reads it any more.
        var closed = false
        /// Where read(2) puts the bytes, reused.
        var buffer = [UInt8](repeating: 0, count: PipeReader.chunkSize)
    }

    private let fd: CInt
    private let source: any DispatchSourceRead
    private let state = Locked(State())

    /// Takes `fd`, a pipe's read end already non-blocking (`O_NONBLOCK`).
    init(fd: CInt) {
        self.fd = fd
        source = DispatchSource.makeReadSource(
            fileDescriptor: fd, queue: DispatchQueue(label: "FDRemap.OutputBytes"))
        // The handlers hold the reader until the source is cancelled
        // (Dispatch then releases them), which is why Owner is apart.
        source.setEventHandler { [self] in becameReadable() }
        source.setCancelHandler { closeDescriptor(fd) }
    }

    private enum Read {
        case bytes([UInt8])
        case end
        case wouldBlock
    }

    /// One read(2), unless the sequence has ended.
    private func readOnce() -> Read {
        state.withLock { s in
            if s.ended || s.cancelled || s.closed { return .end }
            while true {
                let n = s.buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 { return .bytes(Array(s.buffer[..<n])) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
                s.ended = true      // 0: end of file; or an error
                return .end
            }
        }
    }

    /// The next piece, or nil at the end or once a task was cancelled;
    /// at the end the pipe is closed.
    func next() async -> [UInt8]? {
        while !Task.isCancelled {
            switch readOnce() {
            case .bytes(let bytes):
                return bytes
            case .end:
                if state.withLock({ $0.ended }) { close() }
                return nil
            case .wouldBlock:
                await readable()
            }
        }
        cancel()
        return nil
    }

    /// Suspends until the pipe may be readable (a spurious wakeup only
    /// costs a read that finds it empty) or the task is cancelled.
    private func readable() async {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.cancelled || s.closed { return true }
                    s.waiters[id] = c
                    if !s.armed {
                        s.armed = true
                        source.resume()
                    }
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            cancel()
        }
    }

    /// The source's event handler, on its queue: the pipe is readable
    /// (or at its end); wake every waiter and stop watching.
    private func becameReadable() {
        wake { _ in }
    }

    /// A task was cancelled: wake every waiter, and every next() is nil.
    private func cancel() {
        wake { $0.cancelled = true }
    }

    private func wake(_ change: (inout State) -> Void) {
        let waiters = state.withLock { s in
            change(&s)
            // An event delivered after a suspend, or after the cancel,
            // must not touch the source's suspension count.
            if s.armed && !s.closed {
                s.armed = false
                source.suspend()
            }
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Stops reading and closes the descriptor, once: the source is
    /// cancelled (resumed first if need be, since a suspended source
    /// never runs its cancel handler) and its cancel handler closes it.
    func close() {
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            s.ended = true
            if !s.armed {
                s.armed = true
                source.resume()
            }
            source.cancel()
        }
    }
}

/// `close(2)`, where PipeReader's own close() hides it.
private func closeDescriptor(_ fd: CInt) {
    _ = close(fd)
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
    /// The pipe is read only as the returned sequence is consumed (its
    /// read end is made non-blocking with `fcntl(F_SETFL, O_NONBLOCK)`;
    /// the program's write end stays blocking): a program that writes
    /// more than the pipe holds (64 KiB by default) waits until it is
    /// read, so read the output to its end, or drop it (the program's
    /// next write then gets `SIGPIPE`), before waiting for a program that
    /// writes much. ``output(_:at:limit:teardown:)`` does both for you.
    ///
    /// ```swift
    /// let (run, output) = try Program.spawnWithOutput(
    ///     .init(.name("ls"), arguments: ["-l"], environment: .inherit))
    /// for await chunk in output.chunks { print(chunk.count, "bytes") }
    /// let end = try await run.wait()
    /// ```
    ///
    /// - Throws: `EINVAL` for arguments that are not
    ///   ``Arguments/strings(_:descriptors:)`` (argdata, socket
    ///   activation) or a `descriptor` out of the list; `pipe2`'s errors
    ///   (`EMFILE`, `ENFILE`); `fcntl`'s (none on a pipe in practice);
    ///   the errors of ``spawn(_:)``, with the pipe closed again.
    public static func spawnWithOutput(_ configuration: Configuration,
                                       at descriptor: Int = 1) throws(Errno) -> (Execution, OutputBytes) {
        guard case .strings(let strings, var descriptors) = configuration.arguments,
              descriptors.indices.contains(descriptor) else { throw .invalidArgument }
        var ends: [CInt] = [-1, -1]
        guard fdr_swift_pipe_cloexec(&ends) == 0 else { throw Errno(rawValue: errno) }
        // Our end only (each end is its own open file description): the
        // program's write end stays blocking, so a full pipe blocks it.
        let flags = fcntl(ends[0], F_GETFL)
        guard flags >= 0, fcntl(ends[0], F_SETFL, flags | O_NONBLOCK) == 0 else {
            let error = Errno(rawValue: errno)
            close(ends[0])
            close(ends[1])
            throw error
        }
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
        return (child.execution(), OutputBytes(PipeReader(fd: ends[0])))
    }

    /// Runs the program of `configuration` to its end and collects what
    /// it writes to its descriptor `descriptor`, at most `limit` bytes
    /// (as swift-subprocess's `.bytes(limit:)`): more is read and
    /// dropped, never left to block the program, and this process holds
    /// no more than `limit` bytes and one 64 KiB piece. The launch is
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
