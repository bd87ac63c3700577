internal import CYaml
import FDRemap
import SystemPackage

/// Turns libyaml's events into a plan, without recursion and within the
/// limits.
///
/// libyaml (the copy that Yams ships) does the YAML syntax; this does
/// the rest in one pass over its events. Yams's own `compose` is not used
/// because it cannot be bounded from outside: it checks map keys for
/// duplicates by hashing them with every alias expanded, which takes
/// exponential time on an alias bomb used as a key (25 s measured for a
/// key standing for 10^7 values) before a caller sees any node. Here an
/// alias counts as everything it stands for at once, so such input fails
/// as soon as the count passes ``Limits/maximumNodes``. Keys may repeat,
/// as argdata maps and `cloudabi-run` allow.
struct Composer {
    let file: String
    let limits: Limits
    private(set) var sources: [DescriptorSource] = []
    private var inheritedSource: [CInt: Int] = [:]
    private var executableSource: Int? = nil
    private var anchors: [String: Composed] = [:]
    private var nodes = 0
    private var stack: [Frame] = []
    private var root: Argdata? = nil
    /// Where the root value starts, and each key and value of a root
    /// map, in order (for ``Plan/activationEntries()``).
    private(set) var rootLocation: SourceLocation? = nil
    private(set) var rootItemLocations: [SourceLocation] = []

    init(file: String, limits: Limits) {
        self.file = file
        self.limits = limits
    }

    /// A finished value, how many values it stands for, and how many
    /// levels of maps and sequences it has.
    struct Composed {
        var value: Argdata
        var nodes: Int
        var height: Int
    }

    /// An open map or sequence.
    struct Frame {
        var isMap: Bool
        var tag: Tag
        var location: SourceLocation
        var anchor: String?
        var elements: [Argdata] = []
        var pairs: [(key: Argdata, value: Argdata)] = []
        var key: Argdata? = nil
        var keyLocations: [SourceLocation] = []   // of a resource map
        var nodes = 1
        var height = 1
    }

    /// The tree of the single document in bytes (null for no document).
    mutating func compose(_ bytes: [UInt8]) throws(ConfigurationError) -> Argdata {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw error(at: 0, 0, "out of memory")
        }
        defer { yaml_parser_delete(&parser) }
        let result: Result<Argdata, ConfigurationError> = bytes.withUnsafeBufferPointer { buf in
            yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)
            return Result { () throws(ConfigurationError) in try run(&parser, bytes) }
        }
        return try result.get()
    }

    private mutating func run(_ parser: inout yaml_parser_t,
                              _ bytes: [UInt8]) throws(ConfigurationError) -> Argdata {
        var documents = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                throw syntaxError(parser, bytes)
            }
            defer { yaml_event_delete(&event) }
            let at = location(event.start_mark)
            switch event.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    throw ConfigurationError(at, "a second YAML document; a configuration is one document")
                }
            case YAML_STREAM_END_EVENT:
                return root ?? .null
            case YAML_ALIAS_EVENT:
                let name = String(cString: event.data.alias.anchor)
                guard let target = anchors[name] else {
                    throw ConfigurationError(at, "alias *\(name) names no anchor defined before it")
                }
                try count(target.nodes, at)
                try checkDepth(stack.count + target.height, at)
                add(target, at)
            case YAML_SCALAR_EVENT:
                try count(1, at)
                let s = event.data.scalar
                guard s.length <= limits.maximumScalarBytes else {
                    throw ConfigurationError(at, "a scalar of \(s.length) bytes, more than the \(limits.maximumScalarBytes) a program argument can carry")
                }
                let text = String(decoding: UnsafeBufferPointer(start: s.value, count: s.length),
                                  as: UTF8.self)
                let value = try scalar(text, tag: Tag(s.tag),
                                       plain: s.style == YAML_PLAIN_SCALAR_STYLE, at)
                finish(Composed(value: value, nodes: 1, height: 0), anchor: s.anchor, at)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                try count(1, at)
                try checkDepth(stack.count + 1, at)
                let isMap = event.type == YAML_MAPPING_START_EVENT
                let tag = Tag(isMap ? event.data.mapping_start.tag : event.data.sequence_start.tag)
                try checkCollectionTag(tag, isMap: isMap, at)
                let anchor = isMap ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                stack.append(Frame(isMap: isMap, tag: tag, location: at,
                                   anchor: anchor.map { String(cString: $0) }))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                let frame = stack.removeLast()
                let value: Argdata
                if frame.isMap {
                    value = try collectionValue(frame)
                } else {
                    value = .seq(frame.elements)
                }
                let height = value.isDescriptor ? 0 : frame.height
                finish(Composed(value: value, nodes: frame.nodes, height: height),
                       anchorName: frame.anchor, frame.location)
            default:   // stream start, document end
                break
            }
        }
    }

    // MARK: Building the tree

    /// Records an anchor (a later one of the same name replaces it, as
    /// YAML says) and hands the value to its parent.
    private mutating func finish(_ c: Composed, anchor: UnsafeMutablePointer<yaml_char_t>?,
                                 _ at: SourceLocation) {
        finish(c, anchorName: anchor.map { String(cString: $0) }, at)
    }

    private mutating func finish(_ c: Composed, anchorName: String?, _ at: SourceLocation) {
        if let anchorName { anchors[anchorName] = c }
        add(c, at)
    }

    /// Puts a finished value (which starts at `at`) into the open
    /// container, or makes it the root.
    private mutating func add(_ c: Composed, _ at: SourceLocation) {
        guard !stack.isEmpty else {
            root = c.value
            rootLocation = at
            return
        }
        let top = stack.count - 1
        if top == 0 && stack[0].isMap { rootItemLocations.append(at) }
        stack[top].nodes += c.nodes
        stack[top].height = max(stack[top].height, c.height + 1)
        if stack[top].isMap {
            if let key = stack[top].key {
                stack[top].pairs.append((key, c.value))
                stack[top].key = nil
            } else {
                stack[top].key = c.value
                if case .cloudabi = stack[top].tag { stack[top].keyLocations.append(at) }
            }
        } else {
            stack[top].elements.append(c.value)
        }
    }

    /// Counts values toward the limit.
    private mutating func count(_ n: Int, _ at: SourceLocation) throws(ConfigurationError) {
        nodes += n
        guard nodes <= limits.maximumNodes else {
            throw ConfigurationError(at, "more than \(limits.maximumNodes) values (an alias counts as all it stands for, at each use)")
        }
    }

    private func checkDepth(_ depth: Int, _ at: SourceLocation) throws(ConfigurationError) {
        guard depth <= limits.maximumDepth else {
            throw ConfigurationError(at, "maps and sequences nested more than \(limits.maximumDepth) deep")
        }
    }

    // MARK: Tags

    /// Sequences take no tag but `!!seq` (or `!`); maps `!!map`, `!file`
    /// and `!socket`.
    private func checkCollectionTag(_ tag: Tag, isMap: Bool,
                                    _ at: SourceLocation) throws(ConfigurationError) {
        switch tag {
        case .none, .nonSpecific:
            return
        case .yaml("seq") where !isMap, .yaml("map") where isMap:
            return
        case .cloudabi("file") where isMap, .cloudabi("socket") where isMap:
            return
        case .cloudabi("fd"), .cloudabi("executable"), .cloudabi("file"), .cloudabi("socket"),
             .yaml("seq"), .yaml("map"):
            throw ConfigurationError(at, "\(tag) does not take a \(isMap ? "map" : "sequence")\(tag.expects)")
        default:
            throw unknownTag(tag, at)
        }
    }

    private func unknownTag(_ tag: Tag, _ at: SourceLocation) -> ConfigurationError {
        ConfigurationError(at, "unknown tag \(tag) (fdrun knows !fd, !file, !socket, !executable and the core schema's !!str, !!int, !!float, !!bool, !!null, !!binary, !!timestamp, !!seq, !!map)")
    }

    /// The value of a scalar: resolved by the core schema when untagged and
    /// plain, a string when quoted, a descriptor for `!fd` and
    /// `!executable`.
    private mutating func scalar(_ text: String, tag: Tag, plain: Bool,
                                 _ at: SourceLocation) throws(ConfigurationError) -> Argdata {
        switch tag {
        case .none:
            return plain ? try CoreSchema.resolve(text, at) : .str(text)
        case .nonSpecific:
            return .str(text)
        case .yaml(let name):
            guard let v = try CoreSchema.explicit(name, text, at) else {
                if name == "seq" || name == "map" {
                    throw ConfigurationError(at, "\(tag) does not take a scalar")
                }
                throw unknownTag(tag, at)
            }
            return v
        case .cloudabi("fd"):
            let fd = try Resources.descriptorNumber(text, at)
            if let i = inheritedSource[fd] { return placeholder(i) }
            inheritedSource[fd] = sources.count
            return add(DescriptorSource(.inherited(fd), at: at))
        case .cloudabi("executable"):
            guard text.isEmpty else {
                throw ConfigurationError(at, "!executable takes no value, not \(quoted(text))")
            }
            if let i = executableSource { return placeholder(i) }
            executableSource = sources.count
            return add(DescriptorSource(.executable, at: at))
        case .cloudabi("file"), .cloudabi("socket"):
            throw ConfigurationError(at, "\(tag) does not take a scalar\(tag.expects)")
        default:
            throw unknownTag(tag, at)
        }
    }

    /// A map's value: the map, or the descriptor of `!file` or `!socket`.
    private mutating func collectionValue(_ frame: Frame) throws(ConfigurationError) -> Argdata {
        guard case .cloudabi(let name) = frame.tag else { return .map(frame.pairs) }
        var fields: [String: (value: Argdata, at: SourceLocation)] = [:]
        for (i, pair) in frame.pairs.enumerated() {
            let at = frame.keyLocations[i]
            guard case .str(let key) = pair.key else {
                throw ConfigurationError(at, "!\(name) keys are strings, not \(Resources.show(pair.key))")
            }
            guard fields[key] == nil else {
                throw ConfigurationError(at, "!\(name) has two \(quoted(key)) keys")
            }
            fields[key] = (pair.value, at)
        }
        let kind = name == "file"
            ? try Resources.file(fields, frame.location)
            : try Resources.socket(fields, frame.location)
        return add(DescriptorSource(kind, at: frame.location))
    }

    private mutating func add(_ source: DescriptorSource) -> Argdata {
        sources.append(source)
        return placeholder(sources.count - 1)
    }

    private func placeholder(_ i: Int) -> Argdata {
        .fd(FileDescriptor(rawValue: CInt(i)))
    }

    // MARK: Locations and errors

    private func location(_ mark: yaml_mark_t) -> SourceLocation {
        SourceLocation(file: file, line: mark.line + 1, column: mark.column + 1)
    }

    private func error(at line: Int, _ column: Int, _ message: String) -> ConfigurationError {
        ConfigurationError(SourceLocation(file: file, line: line + 1, column: column + 1), message)
    }

    /// libyaml's error, where it happened. A reader error (bad encoding)
    /// has a byte offset and no mark: the line and column are counted.
    private func syntaxError(_ parser: yaml_parser_t, _ bytes: [UInt8]) -> ConfigurationError {
        let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return error(at: parser.mark.line, parser.mark.column, "out of memory")
        case YAML_READER_ERROR:
            let (line, column) = Self.lineAndColumn(bytes, offset: parser.problem_offset)
            let what = parser.problem_value >= 0
                ? " (byte 0x\(String(parser.problem_value, radix: 16)))" : ""
            return error(at: line, column, "\(problem)\(what)")
        default:
            let mark = parser.problem_mark
            if problem.hasPrefix("Maximum nesting level") {
                return error(at: mark.line, mark.column,
                             "maps and sequences nested more than \(limits.maximumDepth) deep")
            }
            let context = parser.context.map { " " + String(cString: $0) } ?? ""
            return error(at: mark.line, mark.column, problem + context)
        }
    }

    /// The 0-based line and column (in characters) of a byte offset.
    static func lineAndColumn(_ bytes: [UInt8], offset: Int) -> (Int, Int) {
        var line = 0, column = 0
        for b in bytes.prefix(offset) {
            if b == 0x0a {
                line += 1
                column = 0
            } else if b & 0xc0 != 0x80 {
                column += 1
            }
        }
        return (line, column)
    }
}

extension Composer {
    /// A tag as libyaml resolved it.
    enum Tag: Equatable, CustomStringConvertible {
        /// No tag.
        case none
        /// `!` alone: a string, sequence or map as written.
        case nonSpecific
        /// `tag:yaml.org,2002:NAME` (`!!NAME`).
        case yaml(String)
        /// `tag:nuxi.nl,2015:cloudabi/NAME`, or the local `!NAME` of a
        /// configuration without the `%TAG` directive.
        case cloudabi(String)
        /// Any other.
        case other(String)

        static let yamlPrefix = "tag:yaml.org,2002:"
        static let cloudabiPrefix = "tag:nuxi.nl,2015:cloudabi/"

        init(_ raw: UnsafeMutablePointer<yaml_char_t>?) {
            guard let raw else {
                self = .none
                return
            }
            let s = String(cString: raw)
            if s == "!" {
                self = .nonSpecific
            } else if s.hasPrefix(Self.yamlPrefix) {
                self = .yaml(String(s.dropFirst(Self.yamlPrefix.count)))
            } else if s.hasPrefix(Self.cloudabiPrefix) {
                self = .cloudabi(String(s.dropFirst(Self.cloudabiPrefix.count)))
            } else if s.hasPrefix("!") {
                self = .cloudabi(String(s.dropFirst()))
            } else {
                self = .other(s)
            }
        }

        /// As a configuration would write it, control characters escaped
        /// (a tag is the user's text and goes to a terminal).
        var description: String {
            switch self {
            case .none: return "(no tag)"
            case .nonSpecific: return "!"
            case .yaml(let name): return "!!" + escaped(name)
            case .cloudabi(let name): return "!" + escaped(name)
            case .other(let tag): return "!<\(escaped(tag))>"
            }
        }

        /// What a resource tag takes, for error messages.
        var expects: String {
            switch self {
            case .cloudabi("fd"): return " (!fd stdin|stdout|stderr|N)"
            case .cloudabi("executable"): return " (!executable alone)"
            case .cloudabi("file"): return " (!file {path: P})"
            case .cloudabi("socket"): return " (!socket {bind: A} or {connect: A})"
            default: return ""
            }
        }
    }
}

extension Argdata {
    var isDescriptor: Bool {
        if case .fd = self { return true }
        return false
    }
}

/// text in double quotes, with quotes, backslashes and control characters
/// escaped, for error messages (fdrun's too).
package func quoted(_ text: String) -> String {
    "\"" + escaped(text) + "\""
}

/// Whether a terminal could act on u: C0 controls, DEL, and C1 controls
/// (U+009B is a CSI in a UTF-8 terminal).
func isControl(_ u: Unicode.Scalar) -> Bool {
    u.value < 0x20 || (0x7f...0x9f).contains(u.value)
}

/// message with every control character but the newline escaped: what
/// fdrun writes to a terminal, whatever a message was built from.
package func terminalSafe(_ message: String) -> String {
    var out = ""
    for u in message.unicodeScalars {
        if u != "\n" && isControl(u) {
            out += "\\x" + String(u.value, radix: 16)
        } else {
            out.unicodeScalars.append(u)
        }
    }
    return out
}

/// text with quotes, backslashes and control characters escaped.
package func escaped(_ text: String) -> String {
    var out = ""
    for u in text.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case _ where isControl(u):
            out += "\\x" + String(u.value, radix: 16)
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}
