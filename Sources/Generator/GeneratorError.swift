#if canImport(Glibc)
import Glibc
#endif

/// Why the traffic generator could not start or finish, in words a user can act on.
public struct GeneratorError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// errno value, 0 when none.
    public let code: Int32

    public init(_ message: String, code: Int32 = 0) {
        self.message = message
        self.code = code < 0 ? -code : code
    }

    public var description: String {
        code == 0 ? message : "\(message): \(String(cString: strerror(code)))"
    }
}
