import FDRemap

extension Plan {
    /// The plan as `fdrun --dry-run` prints it: the program, each of its
    /// descriptors with its source and place in the configuration, the
    /// argdata as YAML (with the program's descriptor numbers) and its
    /// serialised size, and the environment.
    ///
    /// `resolved` gives the address a name resolves to
    /// (``resolvedNames()``), shown after it.
    package func report(executable: String, environment: [String],
                        resolved: [Int: SocketAddress] = [:]) -> String {
        var out = "program: \(escaped(executable))\n"
        out += "descriptors: \(sources.count)\n"
        for (i, source) in sources.enumerated() {
            out += "  \(i): \(source.summary(resolved[i]))  (\(source.location))\n"
        }
        // Placeholder i is the program's descriptor i: the YAML shows the
        // numbers it will see.
        let bytes = argdata.serialize().bytes.count
        out += "argdata: \(bytes) bytes\n"
        out += argdata.yaml()
        if !out.hasSuffix("\n") { out += "\n" }
        out += "environment: \(environment.count) variables\n"
        for v in environment {
            out += "  \(escaped(v))\n"
        }
        return out
    }
}

extension DescriptorSource {
    /// One line: the tag and what it opens (a name shown with
    /// `resolved`, the address it resolves to).
    package func summary(_ resolved: SocketAddress? = nil) -> String {
        switch kind {
        case .inherited(let n):
            let name = n < 3 ? " (\(["stdin", "stdout", "stderr"][Int(n)]))" : ""
            return "!fd \(n)\(name): fdrun's descriptor \(n)"
        case .file(let path, let mode):
            return "!file \(quoted(path)) opened \(mode.rawValue)"
        case .socket(let s):
            let family: String
            switch resolved ?? s.address {
            case .unix: family = "unix"
            case .inet: family = "inet"
            case .inet6: family = "inet6"
            case .name: family = s.family?.rawValue ?? "inet or inet6"
            }
            let state = s.role == .connect ? "connected to"
                : s.kind == .dgram ? "bound to" : "listening on"
            let shown = resolved.map { "\(s.address) (\($0))" } ?? "\(s.address)"
            return "!socket \(family) \(s.kind.rawValue) \(state) \(shown)"
        case .executable:
            return "!executable: the program's own file"
        }
    }
}
