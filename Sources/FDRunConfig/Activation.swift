import FDRemap

extension Plan {
    /// The configuration read as `fdrun --socket-activation` reads it: a
    /// map whose keys are the sockets' names and whose values are
    /// descriptors (`!socket`, `!file`, `!fd`, `!executable`), in order.
    /// Pure, as the plan is.
    ///
    /// - Returns: Each socket's name (its key) and the index in
    ///   ``sources`` of its value.
    /// - Throws: ``ConfigurationError`` at the root when it is not a map,
    ///   at a key that is not a string or not a name that
    ///   `LISTEN_FDNAMES` can carry (``ListeningSocket/isValid(name:)``),
    ///   at a value that is not a descriptor.
    package func activationEntries() throws(ConfigurationError) -> [(name: String, source: Int)] {
        guard case .map(let pairs) = argdata else {
            throw ConfigurationError(rootLocation, "with --socket-activation the configuration is a map of socket names to descriptors (name: !socket {bind: A}), not \(Resources.show(argdata))")
        }
        var entries: [(name: String, source: Int)] = []
        for (i, pair) in pairs.enumerated() {
            let keyAt = rootItemLocations[2 * i], valueAt = rootItemLocations[2 * i + 1]
            guard case .str(let name) = pair.key else {
                throw ConfigurationError(keyAt, "socket names are strings, not \(Resources.show(pair.key))")
            }
            guard ListeningSocket.isValid(name: name) else {
                throw ConfigurationError(keyAt, "\(quoted(name)) cannot be a socket name in LISTEN_FDNAMES (at most 255 printable ASCII characters, no \":\")")
            }
            guard case .fd(let placeholder) = pair.value else {
                throw ConfigurationError(valueAt, "the value of \(quoted(name)) is \(Resources.show(pair.value)), not a descriptor (!socket, !file or !fd)")
            }
            entries.append((name, Int(placeholder.rawValue)))
        }
        return entries
    }

    /// The plan of a `--socket-activation` run as `fdrun --dry-run`
    /// prints it: the program and its arguments, descriptors 0 to 2
    /// (fdrun's own), each socket at 3, 4, ... with its name, source and
    /// place, and the environment the program gets (`environment`, then
    /// the protocol's variables, `LISTEN_PID` last).
    package func activationReport(executable: String, arguments: [String],
                                  entries: [(name: String, source: Int)], environment: [String],
                                  resolved: [Int: SocketAddress] = [:]) -> String {
        var out = "program: \(escaped(executable))\n"
        out += "arguments: \(arguments.count)\n"
        for a in arguments { out += "  \(quoted(a))\n" }
        out += "descriptors: \(3 + entries.count)\n"
        for (n, name) in ["stdin", "stdout", "stderr"].enumerated() {
            out += "  \(n): fdrun's descriptor \(n) (\(name))\n"
        }
        for (i, e) in entries.enumerated() {
            let source = sources[e.source]
            out += "  \(3 + i): \(quoted(e.name)): \(source.summary(resolved[e.source]))  (\(source.location))\n"
        }
        out += "environment: \(environment.count) variables\n"
        for v in environment { out += "  \(escaped(v))\n" }
        return out
    }
}
