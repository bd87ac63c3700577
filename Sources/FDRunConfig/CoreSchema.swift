import FDRemap

/// Scalars by YAML 1.2's core schema, and the standard `!!` tags.
///
/// An untagged plain scalar is null (`~`, `null`, `Null`, `NULL` or
/// nothing), a bool (`true`, `True`, `TRUE` and the same for false), an
/// int (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`), a float
/// (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, `[-+]?.inf`,
/// `.nan` in the three spellings), and otherwise a string. Explicit tags
/// take the same forms, and `!!int` also a sign before `0x` and `0o` (as
/// `argdata_print_yaml` writes large negative integers); `!!float` also
/// takes an int; `!!binary` takes base64 and `!!timestamp` an ISO 8601
/// date and time, so that what `argdata_print_yaml` prints reads back.
enum CoreSchema {
    /// The value of an untagged plain scalar.
    static func resolve(_ s: String, _ at: SourceLocation) throws(ConfigurationError) -> Argdata {
        if isNull(s) { return .null }
        if let b = bool(s) { return .bool(b) }
        if let v = try integer(s, signedRadix: false, at) { return .int(v) }
        if let d = float(s) { return .float(d) }
        return .str(s)
    }

    /// The value of a scalar with the tag `!!name`; nil for a name that
    /// is not a scalar type.
    static func explicit(_ name: String, _ s: String,
                         _ at: SourceLocation) throws(ConfigurationError) -> Argdata? {
        func bad(_ what: String) -> ConfigurationError {
            ConfigurationError(at, "\(quoted(s)) is not \(what) (!!\(name))")
        }
        switch name {
        case "str":
            return .str(s)
        case "null":
            guard isNull(s) else { throw bad("null") }
            return .null
        case "bool":
            guard let b = bool(s) else { throw bad("true or false") }
            return .bool(b)
        case "int":
            guard let v = try integer(s, signedRadix: true, at) else { throw bad("an integer") }
            return .int(v)
        case "float":
            if let d = float(s) { return .float(d) }
            guard let v = try integer(s, signedRadix: true, at) else { throw bad("a number") }
            return .float(Double(v))
        case "binary":
            guard let bytes = base64(s) else { throw bad("base64") }
            return .binary(bytes)
        case "timestamp":
            guard let t = try timestamp(s, at) else {
                throw bad("a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM])")
            }
            return .timestamp(t)
        default:
            return nil
        }
    }

    static func isNull(_ s: String) -> Bool {
        s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL"
    }

    static func bool(_ s: String) -> Bool? {
        switch s {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    /// An integer in the core schema's forms; nil when s is not one.
    /// With signedRadix, `0x` and `0o` may follow a sign. Throws when it
    /// is one but is below -2^63 or above 2^64 - 1: the reference's
    /// getters (`argdata_get_int_s`, `_u`) read no other, and
    /// `cloudabi-run` made none.
    static func integer(_ s: String, signedRadix: Bool,
                        _ at: SourceLocation) throws(ConfigurationError) -> Int128? {
        var u = Array(s.utf8)[...]
        var negative = false
        let hasSign = u.first == UInt8(ascii: "-") || u.first == UInt8(ascii: "+")
        if hasSign {
            negative = u.first == UInt8(ascii: "-")
            u = u.dropFirst()
        }
        var radix = 10
        if u.count > 2, u.first == UInt8(ascii: "0"),
           u[u.startIndex + 1] == UInt8(ascii: "x") || u[u.startIndex + 1] == UInt8(ascii: "o") {
            guard !hasSign || signedRadix else { return nil }
            radix = u[u.startIndex + 1] == UInt8(ascii: "x") ? 16 : 8
            u = u.dropFirst(2)
        }
        guard !u.isEmpty else { return nil }
        var magnitude: UInt128 = 0
        var overflow = false
        for c in u {
            guard let d = digit(c), d < radix else { return nil }
            let (m, o1) = magnitude.multipliedReportingOverflow(by: UInt128(radix))
            let (a, o2) = m.addingReportingOverflow(UInt128(d))
            overflow = overflow || o1 || o2
            magnitude = a
        }
        let limit = negative ? UInt128(1) << 63 : UInt128(UInt64.max)
        guard !overflow, magnitude <= limit else {
            throw ConfigurationError(at, "the integer \(quoted(s)) is outside -2^63 ... 2^64 - 1, the range a program's argdata_get_int reads")
        }
        return negative ? Int128(truncatingIfNeeded: 0 &- magnitude) : Int128(magnitude)
    }

    private static func digit(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    /// A float in the core schema's forms; nil when s is not one.
    static func float(_ s: String) -> Double? {
        switch s {
        case ".nan", ".NaN", ".NAN": return .nan
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        default: break
        }
        let u = Array(s.utf8)
        var i = 0
        func digits() -> Int {
            let start = i
            while i < u.count, u[i] >= UInt8(ascii: "0"), u[i] <= UInt8(ascii: "9") { i += 1 }
            return i - start
        }
        if i < u.count, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") { i += 1 }
        let whole = digits()
        var fraction = 0
        if i < u.count, u[i] == UInt8(ascii: ".") {
            i += 1
            fraction = digits()
            // "1." is a float, "." is not, ".5" is.
            guard whole > 0 || fraction > 0 else { return nil }
        } else if whole == 0 {
            return nil
        }
        if i < u.count, u[i] == UInt8(ascii: "e") || u[i] == UInt8(ascii: "E") {
            i += 1
            if i < u.count, u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        guard i == u.count else { return nil }
        return Double(s)
    }

    /// Standard base64 with padding; spaces and line breaks are ignored.
    static func base64(_ s: String) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: "="):
                padding += 1
                continue
            default:
                break
            }
            guard padding == 0 else { return nil }   // data after padding
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            default: return nil
            }
            values.append(v)
        }
        guard (values.count + padding) % 4 == 0, padding <= 2,
              padding == 0 || values.count % 4 == 4 - padding else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            var acc: UInt32 = 0
            for k in 0..<4 {
                acc = acc << 6 | UInt32(k < n ? values[i + k] : 0)
            }
            for k in 0..<(n - 1) {
                out.append(UInt8(truncatingIfNeeded: acc >> (16 - 8 * k)))
            }
            i += 4
        }
        return out
    }

    /// A YAML timestamp: `Y-M-D`, optionally followed by `T` (or `t`, or
    /// spaces) `h:mm:ss`, an optional fraction (at most 9 digits), and an
    /// optional zone (`Z`, `±h`, `±hh:mm`; UTC without one). The year has
    /// at least four digits and may be negative (proleptic Gregorian, as
    /// `argdata_print_yaml` prints any year). Nil when s has another form;
    /// throws when a field is out of range.
    static func timestamp(_ s: String,
                          _ at: SourceLocation) throws(ConfigurationError) -> Argdata.Timestamp? {
        let u = Array(s.utf8)
        var i = 0
        func number(_ minDigits: Int, _ maxDigits: Int) -> Int128? {
            var v: Int128 = 0
            var n = 0
            while i < u.count, n < maxDigits, u[i] >= UInt8(ascii: "0"), u[i] <= UInt8(ascii: "9") {
                v = v * 10 + Int128(u[i] - UInt8(ascii: "0"))
                i += 1
                n += 1
            }
            return n >= minDigits ? v : nil
        }
        func take(_ c: Character) -> Bool {
            guard i < u.count, u[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        let negativeYear = take("-")
        guard let y0 = number(4, 30), take("-"), let month = number(1, 2), take("-"),
              let day = number(1, 2) else { return nil }
        let year = negativeYear ? -y0 : y0
        var seconds: Int128 = 0
        var nanoseconds: Int128 = 0
        var offset: Int128 = 0
        if i < u.count {
            if !take("T") && !take("t") {
                guard take(" ") || take("\t") else { return nil }
                while take(" ") || take("\t") {}
            }
            guard let h = number(1, 2), take(":"), let m = number(2, 2), take(":"),
                  let sec = number(2, 2) else { return nil }
            guard h < 24, m < 60, sec < 61 else {
                throw ConfigurationError(at, "\(quoted(s)): no such time of day")
            }
            seconds = h * 3600 + m * 60 + sec
            if take(".") {
                let start = i
                guard let f = number(1, 9) else { return nil }
                var scale: Int128 = 1
                for _ in 0..<(9 - (i - start)) { scale *= 10 }
                nanoseconds = f * scale
            }
            while take(" ") || take("\t") {}
            if take("Z") {
            } else if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
                let sign: Int128 = u[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let oh = number(1, 2) else { return nil }
                var om: Int128 = 0
                if take(":") {
                    guard let m = number(2, 2) else { return nil }
                    om = m
                }
                offset = sign * (oh * 3600 + om * 60)
            }
            guard i == u.count else { return nil }
        }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month, year: year) else {
            throw ConfigurationError(at, "\(quoted(s)): no such date")
        }
        let days = daysFromCivil(year, month, day)
        let (total, o) = (days * 86400 + seconds - offset)
            .multipliedReportingOverflow(by: 1_000_000_000)
        guard !o, case let (ns, o2) = total.addingReportingOverflow(nanoseconds), !o2 else {
            throw ConfigurationError(at, "\(quoted(s)): does not fit 128 bits of nanoseconds")
        }
        return Argdata.Timestamp(nanosecondsSince1970: ns)
    }

    static func daysIn(_ month: Int128, year: Int128) -> Int128 {
        switch month {
        case 2:
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400
    /// years, as argdata_print_yaml counts them back).
    static func daysFromCivil(_ y0: Int128, _ m: Int128, _ d: Int128) -> Int128 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = m > 2 ? m - 3 : m + 9
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
