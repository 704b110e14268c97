// How API errors show what was sent: values quoted and cut, decoding errors in one line.

/// A DecodingError in one line: what is wrong and where.
public func describeDecodingError(_ e: DecodingError) -> String { describe(e) }

func describe(_ e: DecodingError) -> String {
    func path(_ c: [any CodingKey]) -> String {
        c.isEmpty ? "the top level" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch e {
    case .keyNotFound(let k, let c): return "missing field \(quoted(path(c.codingPath + [k])))"
    case .typeMismatch(let t, let c):
        return "\(quoted(path(c.codingPath))) should be \(jsonKind(t))" + (found(c.debugDescription).map { ", not \($0)" } ?? "")
    case .valueNotFound(let t, let c): return "\(quoted(path(c.codingPath))) is null, expected \(jsonKind(t))"
    case .dataCorrupted(let c):
        if c.codingPath.isEmpty { return "the body is not valid JSON" }
        // The decoder's words can hold the value (a 100 KB number): cut like any echoed value.
        let words = c.debugDescription.unicodeScalars.count > 120
            ? String(String.UnicodeScalarView(c.debugDescription.unicodeScalars.prefix(120))) + "…" : c.debugDescription
        return "\(words) at \(quoted(path(c.codingPath)))"
    @unknown default: return "\(e)"
    }
}

/// A Swift type as the JSON value it is read from.
func jsonKind(_ type: Any.Type) -> String {
    let name = String(describing: type)
    switch name {
    case "String", "Substring": return "a string"
    case "Bool": return "true or false"
    case "Double", "Float": return "a number"
    default:
        if name.hasPrefix("Int") || name.hasPrefix("UInt") { return "a whole number" }
        if name.hasPrefix("Array<") || name.hasPrefix("Set<") { return "an array" }
        if name.hasPrefix("Dictionary<") { return "an object" }
        return name
    }
}

/// What the decoder found instead, from its description ("Expected to decode String but found number instead."):
/// "a number", "a string"…; nil when it does not say.
func found(_ description: String) -> String? {
    guard let start = description.range(of: "but found "), let end = description.range(of: " instead", range: start.upperBound..<description.endIndex)
    else { return nil }
    var what = description[start.upperBound..<end.lowerBound].lowercased()[...]
    for article in ["a ", "an "] where what.hasPrefix(article) { what = what.dropFirst(article.count) }
    switch what {
    case "number": return "a number"
    case "string": return "a string"
    case "bool", "boolean": return "true or false"
    case "array": return "an array"
    case "dictionary", "object": return "an object"
    case "null": return "null"
    default: return what.count <= 20 ? String(what) : nil
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
