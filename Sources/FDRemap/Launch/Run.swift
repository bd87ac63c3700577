import SystemPackage

/// What ``Program/run(_:teardown:body:)`` gives back: how the program
/// ended, and what the body returned.
public struct ExecutionOutcome<Value> {
    /// How the program ended.
    public var termination: Termination
    /// What the body returned.
    public var value: Value
}

extension ExecutionOutcome: Sendable where Value: Sendable {}

extension Program {
    /// Starts the program of `configuration`, runs `body` with it, and
    /// returns once both have ended: the scoped form, as
    /// swift-subprocess's `run(_:body:)`, in which the child never
    /// outlives the call.
    ///
    /// ```swift
    /// let outcome = try await Program.run(
    ///     .init(.name("sleep"), arguments: ["10"], environment: .inherit)
    /// ) { run in
    ///     try run.send(signal: .terminate)
    ///     return run.processIdentifier
    /// }
    /// print(outcome.termination)   // signaled(15, coreDumped: false)
    /// ```
    ///
    /// When `body` returns, the call waits for the program to exit
    /// (cancelling the calling task then runs `teardown`, as
    /// ``Execution/wait(teardown:)`` does). When `body` throws, or the
    /// task is cancelled while `body` runs and `body` then throws, the
    /// program is torn down by `teardown` (then `SIGKILL`), reaped, and
    /// the body's error is thrown. Either way the child is reaped before
    /// the call returns.
    ///
    /// The launch is ``spawn(_:)``'s (C's `program_spawn_raw`, one
    /// call), so the program gets exactly the descriptors its arguments
    /// name.
    ///
    /// - Parameters:
    ///   - configuration: What to run.
    ///   - teardown: The steps that end the program early; empty (the
    ///     default) kills it at once.
    ///   - body: Works with the running program.
    /// - Throws: ``spawn(_:)``'s `Errno`, the body's error, or what the
    ///   wait throws (`ECHILD` when someone else reaped the child).
    public static func run<Value>(
        _ configuration: Configuration,
        teardown: some Sequence<TeardownStep> & Sendable = [TeardownStep](),
        body: (Execution) async throws -> Value
    ) async throws -> ExecutionOutcome<Value> {
        let run = try spawn(configuration).execution()
        let steps = Array(teardown)
        let value: Value
        do {
            value = try await body(run)
        } catch {
            try await run.teardown(using: steps)
            _ = try await run.wait()
            throw error
        }
        return ExecutionOutcome(termination: try await run.wait(teardown: steps), value: value)
    }
}
