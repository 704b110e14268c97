import Foundation
import Journal
@_exported import MigrationAPI

/// One link to fetch at the destination.
public struct PlannedLink: Codable, Sendable, Equatable {
    public var url: String
    /// The Host header to send.
    public var host: String
    /// Path and query, sent to the destination cache.
    public var path: String
    /// `get` or `conditional` (If-None-Match / If-Modified-Since).
    public var fetch: String
    public var etag: String?
    public var lastModified: String?
    public var contentLength: Int?
}

/// One application in a plan.
public struct PlannedApp: Codable, Sendable, Equatable {
    public var endpoint: String
    public var host: String
    public var proxy: String?
    public var method: ReconstructionMethod
    public var links: [PlannedLink]
    /// Server names to pre-connect to (`hosts-only`).
    public var hosts: [String]
    /// The whole record (`state-transfer`).
    public var state: AppState?
}

/// A migration plan: journaled, and the body of the transfer to the destination agent.
public struct MigrationPlan: Codable, Sendable, Equatable {
    public var migrationId: String
    public var device: String
    public var from: String
    public var to: String
    /// Unix milliseconds.
    public var deadlineUnixMs: Int64
    /// Where the agent reports progress (the control plane's own URL), nil for none.
    public var callback: String?
    public var apps: [PlannedApp]
    public var summary: PlanSummary
}

public enum MigrationStatus: String, Codable, Sendable {
    case planned, transferring, prefetching, ready, failed, cancelled, completed

    public var isFinal: Bool { self == .ready || self == .failed || self == .cancelled || self == .completed }
}

/// Milliseconds from the signal to each step (nil: not reached).
public struct MigrationTimings: Codable, Sendable, Equatable {
    public var plannedMs: Double?
    public var transferringMs: Double?
    public var prefetchingMs: Double?
    public var readyMs: Double?
    public var failedMs: Double?
    public var cancelledMs: Double?
    public var completedMs: Double?
    /// The headline figure: signal to `ready`.
    public var signalToReadyMs: Double? { readyMs }

    enum CodingKeys: String, CodingKey {
        case plannedMs, transferringMs, prefetchingMs, readyMs, failedMs, cancelledMs, completedMs, signalToReadyMs
    }

    public init() {}

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(plannedMs, forKey: .plannedMs)
        try c.encodeIfPresent(transferringMs, forKey: .transferringMs)
        try c.encodeIfPresent(prefetchingMs, forKey: .prefetchingMs)
        try c.encodeIfPresent(readyMs, forKey: .readyMs)
        try c.encodeIfPresent(failedMs, forKey: .failedMs)
        try c.encodeIfPresent(cancelledMs, forKey: .cancelledMs)
        try c.encodeIfPresent(completedMs, forKey: .completedMs)
        try c.encodeIfPresent(signalToReadyMs, forKey: .signalToReadyMs)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        plannedMs = try c.decodeIfPresent(Double.self, forKey: .plannedMs)
        transferringMs = try c.decodeIfPresent(Double.self, forKey: .transferringMs)
        prefetchingMs = try c.decodeIfPresent(Double.self, forKey: .prefetchingMs)
        readyMs = try c.decodeIfPresent(Double.self, forKey: .readyMs)
        failedMs = try c.decodeIfPresent(Double.self, forKey: .failedMs)
        cancelledMs = try c.decodeIfPresent(Double.self, forKey: .cancelledMs)
        completedMs = try c.decodeIfPresent(Double.self, forKey: .completedMs)
    }
}

/// What the plan holds, in counts.
public struct PlanSummary: Codable, Sendable, Equatable {
    public var apps = 0
    public var methods: [String: Int] = [:]
    public var links = 0
    public var conditionalLinks = 0
    public var knownBytes = 0
    public var hosts = 0
    public var skippedUncacheable = 0
    public var skippedUnknownCacheability = 0
    public var skippedNotGet = 0
    public var skippedOverLimit = 0
    public init() {}
}

/// The transfer to the destination agent.
public struct TransferSummary: Codable, Sendable, Equatable {
    public var attempts = 0
    public var rawBytes = 0
    public var compressedBytes = 0
    public var lastError: String?
    public init() {}
}

/// What the agent reported.
public struct PrefetchProgress: Codable, Sendable, Equatable {
    public var total = 0
    public var done = 0
    public var objects = 0
    public var bytes = 0
    public var notModified = 0
    public var failed = 0
    public var hostsConnected = 0
    public var skippedUncacheable = 0
    public init() {}
}

/// `GET /v1/migrations/{id}`.
public struct MigrationView: Codable, Sendable, Equatable {
    public var id: String
    public var device: String
    public var from: String
    public var to: String
    public var source: String
    public var status: MigrationStatus
    public var detail: String?
    public var createdAt: String
    public var deadline: String
    public var timings: MigrationTimings
    public var plan: PlanSummary
    public var transfer: TransferSummary
    public var prefetch: PrefetchProgress
}

/// The agent's state of one transfer: `GET /v1/transfers/{id}` and the progress reports it sends.
public struct AgentTransferStatus: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case received, prefetching, ready, failed, cancelled
        public var isFinal: Bool { self == .ready || self == .failed || self == .cancelled }
    }

    public var migrationId: String
    public var status: Status
    public var detail: String?
    public var progress: PrefetchProgress
    public var receivedAtUnixMs: Int64
    public var finishedAtUnixMs: Int64?
}
