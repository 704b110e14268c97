import Decode
import PacketCraft
import Testing
@testable import Flows

let client = IPAddress("10.45.0.7")!
let server = IPAddress("198.51.100.9")!

/// Builds and decodes a packet; the test fails if it does not decode completely.
func decoded(_ layers: [Layer]) -> DecodedPacket {
    let bytes = PacketBuilder.build(layers)
    var p = DecodedPacket()
    let outcome = bytes.withUnsafeBytes { PacketDecoder.decode($0, linkType: .ethernet, into: &p) }
    if case .complete = outcome {} else { Issue.record("fixture did not decode: \(outcome)") }
    return p
}

func tcp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, flags: UInt8,
         outer: [Layer] = [.ethernet()]) -> DecodedPacket
{
    let ip: Layer = src.isIPv6 ? .ipv6(src: src, dst: dst) : .ipv4(src: src, dst: dst)
    return decoded(outer + [ip, .tcp(src: sport, dst: dport, flags: flags)])
}

func udp(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, outer: [Layer] = [.ethernet()])
    -> DecodedPacket
{
    decoded(outer + [.ipv4(src: src, dst: dst), .udp(src: sport, dst: dport), .payload([1, 2, 3])])
}

/// Collects the flows a table ends.
final class Ended {
    var records: [(FlowEntry, FlowEndReason)] = []
    func callAsFunction(_ e: borrowing FlowEntry, _ r: FlowEndReason) { records.append((copy e, r)) }
}

@Suite("Flow table")
struct FlowTableTests {
    @Test("both directions of a connection are one flow, oriented by the SYN")
    func handshakeOrientation() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let ended = Ended()
        let a = t.track(tcp(client, 40000, server, 80, flags: TCPFlags.syn), length: 100, now: 1, onEnd: ended.callAsFunction)
        let b = t.track(tcp(server, 80, client, 40000, flags: TCPFlags.synAck), length: 100, now: 2, onEnd: ended.callAsFunction)
        let c = t.track(tcp(client, 40000, server, 80, flags: TCPFlags.ack), length: 100, now: 3, onEnd: ended.callAsFunction)
        #expect(a == b && b == c)
        #expect(t.count == 1)
        let e = t.entry(a)
        #expect(e.orientation == .handshake)
        #expect(e.clientAddress == client && e.clientPort == 40000)
        #expect(e.serverAddress == server && e.serverPort == 80)
        #expect(e.packetsToServer == 2 && e.packetsToClient == 1)
        #expect(e.device == client && e.hasDevice)
    }

    @Test("a SYN-ACK seen first makes its receiver the client")
    func synAckFirst() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let i = t.track(tcp(server, 8443, client, 50000, flags: TCPFlags.synAck), length: 100, now: 1) { _, _ in }
        #expect(t.entry(i).clientAddress == client)
        #expect(t.entry(i).orientation == .handshake)
    }

    @Test("mid-stream pickup: the service port is the server, whichever side speaks first",
          arguments: [true, false])
    func midStream(serverSpeaksFirst: Bool) {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let p = serverSpeaksFirst ? tcp(server, 80, client, 51000, flags: TCPFlags.ack)
                                  : tcp(client, 51000, server, 80, flags: TCPFlags.ack)
        let i = t.track(p, length: 100, now: 1) { _, _ in }
        #expect(t.entry(i).orientation == .portHeuristic)
        #expect(t.entry(i).clientAddress == client)
        #expect(t.entry(i).serverPort == 80)
    }

    @Test("two ephemeral ports: the first sender is the client; a later SYN corrects it")
    func firstPacketThenSyn() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let i = t.track(tcp(server, 40001, client, 50001, flags: TCPFlags.ack), length: 100, now: 1) { _, _ in }
        #expect(t.entry(i).orientation == .firstPacket)
        #expect(t.entry(i).clientAddress == server)
        _ = t.track(tcp(client, 50001, server, 40001, flags: TCPFlags.syn), length: 100, now: 2) { _, _ in }
        #expect(t.entry(i).orientation == .handshake)
        #expect(t.entry(i).clientAddress == client)
        #expect(t.entry(i).device == client)
    }

    @Test("the same 5-tuple on different VLANs is two flows")
    func vlanSeparates() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let a = t.track(udp(client, 5000, server, 53, outer: [.ethernet(), .vlan(id: 10)]), length: 100, now: 1) { _, _ in }
        let b = t.track(udp(client, 5000, server, 53, outer: [.ethernet(), .vlan(id: 20)]), length: 100, now: 2) { _, _ in }
        let c = t.track(udp(server, 53, client, 5000, outer: [.ethernet(), .vlan(id: 10)]), length: 100, now: 3) { _, _ in }
        #expect(a != b)
        #expect(a == c)
        #expect(t.count == 2)
    }

    @Test("GTP-U: uplink and downlink TEIDs differ yet are one flow; the device is the inner UE address")
    func gtpuFlow() {
        let enb = IPAddress("172.16.0.1")!, upf = IPAddress("172.16.255.1")!
        let ue = IPAddress("10.45.3.3")!
        let up = tcp(ue, 40000, server, 80, flags: TCPFlags.syn, outer: [
            .ethernet(), .ipv4(src: enb, dst: upf), .udp(src: 2152, dst: 2152), .gtpu(teid: 0x111)])
        let down = tcp(server, 80, ue, 40000, flags: TCPFlags.synAck, outer: [
            .ethernet(), .ipv4(src: upf, dst: enb), .udp(src: 2152, dst: 2152), .gtpu(teid: 0x222)])
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let a = t.track(up, length: 100, now: 1) { _, _ in }
        let b = t.track(down, length: 100, now: 2) { _, _ in }
        #expect(a == b)
        let e = t.entry(a)
        #expect(e.teidToServer == 0x111 && e.teidToClient == 0x222)
        #expect(e.device == ue)
        #expect(e.key.tunnelA == enb && e.key.tunnelB == upf)
    }

    @Test("subscriber prefixes name the device side; flows outside them have no device")
    func subscriberPrefix() throws {
        var prefixes = SubscriberPrefixes()
        try prefixes.add("10.45.0.0/16")
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000, subscribers: prefixes)
        // The device here is the server side (a device running a service reached from outside).
        let i = t.track(tcp(server, 50000, client, 22, flags: TCPFlags.syn), length: 100, now: 1) { _, _ in }
        #expect(t.entry(i).clientAddress == server)
        #expect(t.entry(i).device == client)
        let j = t.track(tcp(IPAddress("192.0.2.1")!, 50000, server, 80, flags: TCPFlags.syn), length: 100, now: 2) { _, _ in }
        #expect(!t.entry(j).hasDevice)
        #expect(t.stats.withoutDevice == 1)
    }

    @Test("bad subscriber prefixes are refused with the reason", arguments: ["10.0.0.0/33", "banana", "::1/129", "10.0.0/8"])
    func badPrefix(text: String) {
        var prefixes = SubscriberPrefixes()
        #expect(throws: SubscriberPrefixes.PrefixError.self) { try prefixes.add(text) }
    }

    @Test("idle flows end once the timeout passes, oldest first")
    func idleTimeout() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 100)
        let ended = Ended()
        t.track(udp(client, 40001, server, 53), length: 100, now: 0, onEnd: ended.callAsFunction)
        t.track(udp(client, 40002, server, 53), length: 100, now: 50, onEnd: ended.callAsFunction)
        t.track(udp(client, 40003, server, 53), length: 100, now: 120, onEnd: ended.callAsFunction)  // 40001 is 120 idle: ends
        #expect(ended.records.count == 1)
        #expect(ended.records.first?.1 == .idle)
        #expect(ended.records.first?.0.clientPort == 40001)
        t.expire(now: 1000, limit: 10, onEnd: ended.callAsFunction)
        #expect(ended.records.count == 3)
        #expect(t.count == 0)
        #expect(t.stats.endedIdle == 3)
    }

    @Test("a full table evicts the least recently used flow, and lookups still find every other flow")
    func lruEviction() {
        let t = FlowTable(capacity: 64, idleTimeoutNanoseconds: .max / 2)
        let ended = Ended()
        var slots: [UInt16: Int32] = [:]
        for port in UInt16(40001)...40064 {
            slots[port] = t.track(udp(client, port, server, 53), length: 100, now: UInt64(port), onEnd: ended.callAsFunction)
        }
        // Touch the first flow so the second becomes the least recently used.
        #expect(t.track(udp(server, 53, client, 40001), length: 100, now: 50000, onEnd: ended.callAsFunction) == slots[40001])
        t.track(udp(client, 40065, server, 53), length: 100, now: 50001, onEnd: ended.callAsFunction)
        #expect(ended.records.count == 1)
        #expect(ended.records.first?.1 == .evictedLRU)
        #expect(ended.records.first?.0.clientPort == 40002)
        #expect(t.count == 64)
        // Every surviving flow is still found (backward-shift deletion kept the probe chains whole).
        for port in UInt16(40003)...40064 {
            #expect(t.track(udp(client, port, server, 53), length: 100, now: 200, onEnd: ended.callAsFunction) == slots[port])
        }
        #expect(t.stats.evictedLRU == 1)
        #expect(t.stats.created == 65)
    }

    @Test("a closed TCP connection ends after the linger time")
    func closedLinger() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000, closedLingerNanoseconds: 10)
        let ended = Ended()
        t.track(tcp(client, 40000, server, 80, flags: TCPFlags.finAck), length: 100, now: 1, onEnd: ended.callAsFunction)
        t.track(tcp(server, 80, client, 40000, flags: TCPFlags.finAck), length: 100, now: 2, onEnd: ended.callAsFunction)
        t.expire(now: 5, limit: 10, onEnd: ended.callAsFunction)
        #expect(ended.records.isEmpty)
        t.expire(now: 20, limit: 10, onEnd: ended.callAsFunction)
        #expect(ended.records.map(\.1) == [.closed])
    }

    @Test("two service ports: the lower one serves")
    func bothServicePorts() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000)
        let i = t.track(udp(server, 53, client, 8080), length: 100, now: 1) { _, _ in }
        #expect(t.entry(i).serverPort == 53)
        #expect(t.entry(i).clientAddress == client)
    }

    @Test("a SYN reusing a closed connection's 5-tuple ends it and starts a new flow")
    func portReuse() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let ended = Ended()
        t.track(tcp(client, 40000, server, 80, flags: TCPFlags.syn), length: 60, now: 1, onEnd: ended.callAsFunction)
        t.track(tcp(client, 40000, server, 80, flags: TCPFlags.finAck), length: 60, now: 2, onEnd: ended.callAsFunction)
        t.track(tcp(server, 80, client, 40000, flags: TCPFlags.finAck), length: 60, now: 3, onEnd: ended.callAsFunction)
        let i = t.track(tcp(client, 40000, server, 80, flags: TCPFlags.syn), length: 74, now: 4,
                        onEnd: ended.callAsFunction)
        #expect(ended.records.map(\.1) == [.closed])
        #expect(ended.records.first?.0.packetsToServer == 2)
        #expect(t.stats.created == 2)
        #expect(t.entry(i).packetsToServer == 1 && t.entry(i).bytesToServer == 74)
        // A retransmitted SYN of a live connection is not a new flow.
        #expect(t.track(tcp(client, 40000, server, 80, flags: TCPFlags.syn), length: 74, now: 5,
                        onEnd: ended.callAsFunction) == i)
        #expect(t.stats.created == 2)
    }

    @Test("bytes are the lengths given, per direction")
    func byteCounts() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000_000)
        let i = t.track(udp(client, 40000, server, 53), length: 100, now: 1) { _, _ in }
        t.track(udp(server, 53, client, 40000), length: 300, now: 2) { _, _ in }
        t.track(udp(server, 53, client, 40000), length: 50, now: 3) { _, _ in }
        #expect(t.entry(i).bytesToServer == 100 && t.entry(i).bytesToClient == 350)
    }

    @Test("flush ends every flow")
    func flush() {
        let t = FlowTable(capacity: 16, idleTimeoutNanoseconds: 1_000_000)
        for port in UInt16(40001)...40005 { t.track(udp(client, port, server, 53), length: 100, now: 1) { _, _ in } }
        let ended = Ended()
        t.flush(onEnd: ended.callAsFunction)
        #expect(ended.records.count == 5)
        #expect(ended.records.allSatisfy { $0.1 == .flushed })
        #expect(t.count == 0)
    }
}
