/// Finds a key that appears twice in one JSON object (RFC 8259 §4: names SHOULD be unique; decoders then keep one
/// of them, silently). A scan of the text, not a parse: strings are skipped with their escapes, objects tracked on
/// a stack (bounded by the body's size, already bounded). Invalid JSON is left to the decoder, which says why.
public enum JSONDuplicateKeys {
    public static func first(in bytes: [UInt8]) -> String? {
        // Per open container: nil for an array, the keys seen so far for an object.
        var stack: [Set<[UInt8]>?] = []
        var expectKey = false  // in an object, after `{` or `,`
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"):
                stack.append([])
                expectKey = true
            case UInt8(ascii: "["):
                stack.append(nil)
                expectKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                expectKey = false
            case UInt8(ascii: ","):
                expectKey = stack.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                // A string: to its unescaped closing quote.
                let start = i + 1
                i += 1
                while i < n, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if expectKey, i <= n, var keys = stack.last ?? nil {
                    let key = Array(bytes[start..<min(i, n)])
                    if !keys.insert(key).inserted { return String(decoding: key, as: UTF8.self) }
                    stack[stack.count - 1] = keys
                }
                expectKey = false
            default:
                break
            }
            i += 1
        }
        return nil
    }
}
