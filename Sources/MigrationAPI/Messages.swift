// How API errors show what was sent: values quoted and cut, decoding errors in one line.

/// A DecodingError in one line: what is wrong and where.
public func describeDecodingError(_ e: DecodingError) -> String { describe(e) }

func describe(_ e: DecodingError) -> String {
    func path(_ c: [any CodingKey]) -> String {
        c.isEmpty ? "the top level" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch e {
    case .keyNotFound(let k, let c): return "missing field \(quoted(path(c.codingPath + [k])))"
    case .typeMismatch(let t, let c): return "\(quoted(path(c.codingPath))) should be \(t)"
    case .valueNotFound(let t, let c): return "\(quoted(path(c.codingPath))) is null, expected \(t)"
    case .dataCorrupted(let c):
        if c.codingPath.isEmpty { return "the body is not valid JSON" }
        return "\(c.debugDescription) at \(path(c.codingPath))"
    @unknown default: return "\(e)"
    }
}

/// A value echoed in an error message, in quotes and cut to 80 characters (a 100 KB field is not sent back whole;
/// the message says how long it was); control characters shown escaped.
public func quoted(_ value: some StringProtocol) -> String {
    let text = String(value)
    var shown = ""
    for c in text.unicodeScalars.prefix(80) {
        shown += c.value < 0x20 || c.value == 0x7f ? c.escaped(asASCII: true) : String(c)
    }
    let count = text.unicodeScalars.count
    return "'" + shown + "'" + (count > 80 ? "… (\(text.utf8.count) bytes)" : "")
}
