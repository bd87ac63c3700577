import SystemPackage
internal import CFDRemapHost
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A running child process that any number of tasks can share: to wait
/// for, to signal, to tear down.
///
/// Made from a ``ChildProcess`` by ``ChildProcess/execution()``, it is
/// `Sendable` and copyable, so it goes where a `~Copyable` value cannot:
/// into the child tasks of a task group, an `async let`, a `Task`.
///
/// ```swift
/// let end = try await withThrowingTaskGroup(of: Termination.self) { group in
///     for _ in 0..<100 {
///         let run = try Program.spawn("/bin/true").execution()
///         group.addTask { try await run.wait() }
///     }
///     return try await group.reduce(into: [Termination]()) { $0.append($1) }
/// }
/// ```
///
/// The child is reaped once, by the first ``wait(teardown:)`` (or
/// ``waitBlocking()``) that sees it exit; every wait returns the same
/// ``Termination``. When the last copy goes away before any wait
/// reaped the child, the child is not killed: it runs to its end and is
/// reaped in the background (C's `program_reap`), never left a zombie.
public struct Execution: Sendable {
    let state: ProcessState

    init(_ state: ProcessState) {
        self.state = state
    }

    /// The child's process ID (a `pid_t`), for display and for APIs that
    /// need one; signal and wait through this handle, which uses the
    /// child's pidfd and can never reach a process that reused the ID.
    public var processIdentifier: Int32 { state.pid }

    /// Waits, without blocking a thread, until the child exits, reaps it
    /// and tells how it ended.
    ///
    /// The wait sleeps on the child's pidfd in the launcher's one epoll
    /// thread (C's `program_watch`), so any number of children can be
    /// awaited at once without a thread each.
    ///
    /// If the waiting task is cancelled, the child is torn down: each
    /// step of `teardown` sends its signal and gives the child its time
    /// to exit, then `SIGKILL` ends it. The wait then returns how the
    /// child ended (cancellation is not an error here: the child is
    /// gone and reaped, never left behind); check `Task.isCancelled`.
    ///
    /// - Parameter teardown: The steps run when the waiting task is
    ///   cancelled; the empty sequence (the default, as in
    ///   swift-subprocess) kills the child at once.
    /// - Throws: `ECHILD` when someone else (a `waitpid(-1)` elsewhere
    ///   in the process) reaped the child; what `program_watch` reports
    ///   when the wait cannot be registered (`ENOMEM`, `EAGAIN`,
    ///   `ENOSPC`), with the child left running and still to be waited
    ///   for.
    public func wait(teardown: some Sequence<TeardownStep> & Sendable = [TeardownStep]())
        async throws(Errno) -> Termination {
        try await state.wait(teardown: Array(teardown))
    }

    /// Waits for the child, blocking the calling thread: for callers
    /// that are not async. Reaps it by its pidfd (`program_wait`).
    ///
    /// - Throws: `ECHILD` when someone else reaped the child.
    public func waitBlocking() throws(Errno) -> Termination {
        try state.waitBlocking()
    }

    /// Sends `signal` to the child through its pidfd
    /// (`pidfd_send_signal`, C's `program_kill`).
    ///
    /// - Throws: `ESRCH` when the child has ended and was reaped,
    ///   `EINVAL` for an invalid signal, `EPERM`.
    public func send(signal: Signal) throws(Errno) {
        try state.send(signal)
    }

    /// Runs `steps` on the child, as a cancelled wait does, and returns
    /// once the child has exited (it is not reaped: wait for it).
    ///
    /// Each step sends its signal through the child's pidfd (C's
    /// `program_kill`) and gives the child its duration to exit, watched
    /// by `program_watch`; after the last, `SIGKILL`. Cancelling the
    /// calling task does not cut the sequence short.
    ///
    /// - Throws: What ``wait(teardown:)`` throws when the exit cannot be
    ///   watched.
    public func teardown(using steps: some Sequence<TeardownStep> & Sendable)
        async throws(Errno) {
        try state.watch()
        let steps = Array(steps)
        await uncancelled { [state] in await state.teardown(steps) }
    }
}

/// `body` in a task of its own, which the caller's cancellation does not
/// reach (as swift-subprocess's teardown runs), awaited.
private func uncancelled(_ body: @escaping @Sendable () async -> Void) async {
    await Task { await body() }.value
}

/// What every copy of an ``Execution`` (and its ``ChildProcess``)
/// shares: the child, its pidfd, whether it has exited, who waits, and
/// how it ended once reaped.
final class ProcessState: Sendable {
    let pid: pid_t
    /// Owned: closed in deinit (or handed to `program_reap`), never
    /// before, so that no signal or wait ever names a reused number.
    let pidfd: CInt

    private struct State {
        var watching = false
        var exited = false
        var result: Result<Termination, Errno>?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let state = Locked(State())

    init(pid: pid_t, pidfd: CInt) {
        self.pid = pid
        self.pidfd = pidfd
    }

    deinit {
        let reaped = state.withLock { $0.result != nil }
        if reaped {
            if pidfd >= 0 { close(pidfd) }
        } else {
            // Errors (no thread could be started) leave a zombie at
            // worst; a deinit cannot report them.
            _ = program_reap(pid, pidfd)
        }
    }

    var hasExited: Bool { state.withLock { $0.exited } }

    /// Registers with the reaper thread (once): `exited()` runs there
    /// when the child has exited. The registration holds a reference.
    func watch() throws(Errno) {
        let first = state.withLock { s -> Bool in
            defer { s.watching = true }
            return !s.watching && !s.exited
        }
        guard first else { return }
        let me = Unmanaged.passRetained(self)
        let error = program_watch(pid, pidfd, { arg in
            Unmanaged<ProcessState>.fromOpaque(arg!).takeRetainedValue().exited()
        }, me.toOpaque())
        if error != 0 {
            me.release()
            state.withLock { $0.watching = false }
            throw Errno(rawValue: error)
        }
    }

    /// On the reaper thread: the child has exited; wake every waiter.
    private func exited() {
        let waiters = state.withLock { s in
            s.exited = true
            defer { s.waiters = [:] }
            return s.waiters.values
        }
        for w in waiters { w.resume() }
    }

    /// Suspends until the child has exited, or (when `cancellable`)
    /// until the current task is cancelled.
    func exit(cancellable: Bool) async {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        let suspend = {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { s -> Bool in
                    if s.exited || s.cancelled.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        }
        guard cancellable else { return await suspend() }
        await withTaskCancellationHandler {
            await suspend()
        } onCancel: {
            let c = self.state.withLock { s in
                let c = s.waiters.removeValue(forKey: id)
                if c == nil { s.cancelled.insert(id) }
                return c
            }
            c?.resume()
        }
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    /// Whether the child exits within `duration` (in a task that is not
    /// cancelled).
    func exited(within duration: Duration) async -> Bool {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.exit(cancellable: true) }
            group.addTask { try? await Task.sleep(for: duration) }
            await group.next()
            group.cancelAll()
        }
        return hasExited
    }

    /// The teardown: each step's signal and time, then SIGKILL; returns
    /// when the child has exited. Needs the watch.
    func teardown(_ steps: [TeardownStep]) async {
        for step in steps {
            if hasExited { return }
            if program_kill(pid, pidfd, step.signal.rawValue) == ESRCH { break }
            if await exited(within: step.allowedDurationToNextStep) { return }
        }
        _ = program_kill(pid, pidfd, SIGKILL)
        await exit(cancellable: false)
    }

    /// The async wait: watch, wait for the exit (tearing the child down
    /// if the task is cancelled meanwhile), reap.
    func wait(teardown steps: [TeardownStep]) async throws(Errno) -> Termination {
        if let result = state.withLock({ $0.result }) { return try result.get() }
        try watch()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.exit(cancellable: true)
                if !self.hasExited {
                    await uncancelled { await self.teardown(steps) }
                }
            }
            await self.exit(cancellable: false)
            group.cancelAll()
        }
        return try reap()
    }

    /// Reaps the exited child, once; later calls get the same result.
    private func reap() throws(Errno) -> Termination {
        try state.withLock { s throws(Errno) -> Termination in
            if s.result == nil {
                var status: CInt = 0
                let error = program_wait(pid, pidfd, &status)
                s.result = error == 0 ? .success(Termination(waitStatus: status))
                                      : .failure(Errno(rawValue: error))
            }
            return try s.result!.get()
        }
    }

    /// The blocking wait (`program_wait` by the pidfd).
    func waitBlocking() throws(Errno) -> Termination {
        if let result = state.withLock({ $0.result }) { return try result.get() }
        var status: CInt = 0
        let error = program_wait(pid, pidfd, &status)
        let result: Result<Termination, Errno> =
            error == 0 ? .success(Termination(waitStatus: status))
                       : .failure(Errno(rawValue: error))
        // A concurrent async wait may have reaped it first (this one
        // then got ECHILD): that result stands.
        let kept = state.withLock { s in
            if s.result == nil || error == 0 { s.result = result }
            return s.result!
        }
        return try kept.get()
    }

    func send(_ signal: Signal) throws(Errno) {
        let error = program_kill(pid, pidfd, signal.rawValue)
        guard error == 0 else { throw Errno(rawValue: error) }
    }
}

/// A value behind a `pthread_mutex_t`: what `Synchronization.Mutex`
/// does, with a lock that ThreadSanitizer knows (it intercepts
/// `pthread_mutex_lock`; Mutex's futex on Linux it cannot see, and it
/// reports the accesses under it as races). `withLock` never suspends.
final class Locked<Value>: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value)
    }
}
