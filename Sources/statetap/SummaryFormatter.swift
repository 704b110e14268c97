import Extract
import Decode
import Foundation
import Pipeline
import Tap

/// Renders a pipeline summary as text or as one JSON object (same content).
enum SummaryFormatter {
    /// The summary as an ordered list of (key, value) pairs; values are numbers, strings or nested objects.
    /// `allReasons`: list every error and notice, zeros included (JSON: a stable schema for tools).
    static func object(_ s: PipelineSummary, allReasons: Bool = false, live: LiveReport? = nil,
                       journal: [(String, Any)]? = nil) -> [(String, Any)] {
        let c = s.counters
        var layers: [(String, Any)] = []
        for (name, layer) in Layers.named { layers.append((name, c.packets(with: layer))) }
        layers.append(("non_ip", c.notIP))
        var errors: [(String, Any)] = []
        for e in DecodeError.allCases where allReasons || c.errors[Int(e.rawValue)] > 0 {
            errors.append((e.name, c.errors[Int(e.rawValue)]))
        }
        var notices: [(String, Any)] = []
        for n in DecodeNotice.allCases where allReasons || c.notices[Int(n.rawValue)] > 0 {
            notices.append((n.name, c.notices[Int(n.rawValue)]))
        }
        let malformed = c.errors.reduce(0, +)
        let cpu = processCPUSeconds()
        var out: [(String, Any)] = [
            ("files", s.files),
            ("packets", c.packets),
            ("bytes", c.bytes),
            ("capture_duration_s", round3(s.captureDurationSeconds)),
            ("wall_s", round3(Double(s.wallNanoseconds) / 1e9)),
            ("packets_per_second", Int(s.packetsPerSecond)),
            ("cpu_s", round3(cpu)),
            ("cpu_ns_per_packet", c.packets > 0 ? Int(cpu * 1e9 / Double(c.packets)) : 0),
            ("workers", s.workers),
            ("layers", layers),
            ("flows", [
                ("total", s.flows), ("tcp", s.flowsTCP), ("udp", s.flowsUDP), ("other", s.flowsOther),
                ("ended_idle", c.flows.endedIdle), ("ended_closed", c.flows.endedClosed),
                ("evicted_lru", c.flows.evictedLRU), ("peak_active_sum_of_workers", c.flows.peakActive),
                ("without_device", s.flowsWithoutDevice),
            ] as [(String, Any)]),
            ("devices", s.devices), ("devices_evicted", s.devicesEvicted),
            ("reassembly", [
                ("fragments", c.reassembly.fragments), ("datagrams_completed", c.reassembly.datagramsCompleted),
                ("datagrams_timed_out", c.reassembly.datagramsTimedOut),
                ("datagrams_dropped_for_budget", c.reassembly.datagramsDroppedForBudget),
                ("incomplete_at_end", c.reassemblyIncompleteAtEnd),
                ("overlap_conflicts", c.reassembly.overlapConflicts),
                ("stream_bytes_peak", c.streamBytesPeak),
            ] as [(String, Any)]),
            ("pipeline", [
                ("ring_full", s.ringFullEvents), ("ring_full_drops", s.ringFullDrops), ("pool_waits", s.poolWaits),
                ("sink_full_waits", c.sinkFullWaits), ("flow_records_dropped", c.flowRecordsDropped),
                ("frames_not_returned", s.framesNotReturned),
            ] as [(String, Any)]),
            ("events", [
                ("server_name", s.serverNameEvents), ("web_link", s.webLinkEvents), ("dropped", c.eventsDropped),
            ] as [(String, Any)]),
            ("quic", [
                ("initials_decrypted", c.quic.initials), ("client_hellos", c.quic.clientHellos),
                ("client_hellos_malformed", c.quic.clientHelloMalformed), ("not_decrypted", c.quic.notDecrypted),
                ("unsupported_version", c.quic.unsupportedVersion), ("skipped_known", c.quic.skipped),
                ("reattempts", c.quic.reattempts),
                ("memcap_drops", c.quic.memcapDrops), ("table_cleared", c.quic.tableCleared),
            ] as [(String, Any)]),
            ("http", [
                ("connections", c.http.connections), ("requests", c.http.requests), ("responses", c.http.responses),
                ("responses_without_request", c.http.responsesWithoutRequest),
                ("unpaired_after_loss", c.http.unpairedAfterLoss),
                ("unpaired_response_first", c.http.unpairedResponseFirst), ("interim_responses", c.http.interimResponses),
                ("truncated_messages", c.http.truncatedMessages),
                ("stream_gaps", c.http.gaps),
                ("malformed_messages", c.http.malformed), ("memcap_skips", c.http.memcapSkips),
                ("overlap_conflicts", c.http.overlapConflicts), ("table_full", c.http.tableFull),
            ] as [(String, Any)]),
            ("tls", [
                ("client_hellos", c.tls.clientHellos), ("streams_not_tls", c.tls.notTLS),
                ("starttls_restarts", c.tls.restarted), ("memcap_skips", c.tls.memcapSkips),
                ("overlap_conflicts", c.tls.overlapConflicts), ("table_full", c.tls.tableFull),
            ] as [(String, Any)]),
        ]
        if let k = s.tlsKeys {
            let h = c.https
            out.append(("https", [
                ("connections", h.connections), ("tls13", h.tls13), ("tls12", h.tls12),
                ("connections_decrypted", h.connectionsDecrypted), ("records", h.records),
                ("records_decrypted", h.recordsDecrypted), ("bytes_decrypted", h.bytesDecrypted),
                ("connections_held_for_keys", h.connectionsHeld), ("keys_late", h.keysLate),
                ("keys_never_came", h.keysNeverCame), ("authentication_failures", h.authenticationFailures),
                ("unsupported_suite", h.unsupportedSuite), ("not_tls", h.notTLS), ("stream_gaps", h.gaps),
                ("held_overflow", h.heldOverflow), ("key_updates", h.keyUpdates),
                ("early_data_records", h.earlyDataRecords), ("h2_connections", h.h2Connections),
                ("http1_connections", h.http1Connections), ("other_alpn", h.otherApplications),
                ("requests", h.requests), ("responses", h.responses), ("lost_sync", h.lostSync),
                ("memcap_skips", h.memcapSkips), ("table_full", h.tableFull),
            ] as [(String, Any)]))
            out.append(("tls_keys", [
                ("lines_accepted", k.linesAccepted), ("lines_rejected", k.linesRejected), ("held", k.held),
                ("removed_ended", k.removedEnded), ("evicted_full", k.evictedFull), ("evicted_age", k.evictedAge),
            ] as [(String, Any)]))
        }
        out += [
            ("malformed_packets", malformed),
            ("errors", errors),
            ("notices", notices),
            ("read_errors", s.readErrors),
        ]
        if let live { out.append(("live", live.object)) }
        if let journal { out.append(("journal", journal)) }
        return out
    }

    private static func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

    static func json(_ s: PipelineSummary, live: LiveReport? = nil, journal: [(String, Any)]? = nil) -> String {
        encode(object(s, allReasons: true, live: live, journal: journal))
    }

    /// A value of the summary's shape as JSON: pairs are objects, string lists arrays, numbers and booleans bare.
    static func encode(_ v: Any) -> String {
        // An empty array casts to any array type: the dynamic type decides between a list and an object.
        switch v {
        case let list as [String] where type(of: v) == [String].self:
            return "[" + list.map(quote).joined(separator: ",") + "]"
        case let pairs as [(String, Any)]:
            return "{" + pairs.map { "\(quote($0.0)):\(encode($0.1))" }.joined(separator: ",") + "}"
        case let list as [String]:
            return "[" + list.map(quote).joined(separator: ",") + "]"
        case let s as String:
            return quote(s)
        case let d as Double:
            return d.isFinite ? String(d) : "null"
        default:
            return "\(v)"
        }
    }

    private static func quote(_ s: String) -> String { jsonQuoted(s) }

    static func text(_ s: PipelineSummary, live: LiveReport? = nil, journal: [(String, Any)]? = nil) -> String {
        render(object(s, live: live, journal: journal))
    }

    /// Pairs as indented `key: value` lines.
    static func render(_ pairs: [(String, Any)]) -> String {
        var lines: [String] = []
        func render(_ pairs: [(String, Any)], indent: String) {
            for (k, v) in pairs {
                switch v {
                case let list as [String] where type(of: v) == [String].self:
                    lines.append("\(indent)\(k): \(list.isEmpty ? "none" : list.joined(separator: ", "))")
                case let nested as [(String, Any)]:
                    if nested.isEmpty {
                        lines.append("\(indent)\(k): none")
                    } else {
                        lines.append("\(indent)\(k):")
                        render(nested, indent: indent + "  ")
                    }
                case let list as [String]:
                    lines.append("\(indent)\(k): \(list.isEmpty ? "none" : list.joined(separator: ", "))")
                default:
                    lines.append("\(indent)\(k): \(v)")
                }
            }
        }
        render(pairs, indent: "")
        return lines.joined(separator: "\n")
    }
}
