/// What went wrong with a journal, with a message that says what to do.
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case io, diskFull, locked, compression, corrupt, usage }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
