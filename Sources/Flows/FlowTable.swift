import Decode

/// How a flow's client side was decided.
public enum Orientation: UInt8, Sendable, BitwiseCopyable {
    /// A SYN (client) or SYN-ACK (server) was seen.
    case handshake
    /// Mid-stream: the endpoint on a service port is the server.
    case portHeuristic
    /// No better clue: the first packet's sender is the client.
    case firstPacket
}

/// Why a flow left the table.
public enum FlowEndReason: UInt8, Sendable, BitwiseCopyable {
    case idle, evictedLRU, closed, flushed
}

/// One flow's state. Fixed size; lives in the table's preallocated storage.
public struct FlowEntry: Sendable, BitwiseCopyable {
    public var key: FlowKey
    public var hash: UInt64
    /// True when endpoint A of the key is the client.
    public var clientIsA: Bool
    public var orientation: Orientation
    /// The device of this flow (see `FlowTable.deviceOf`), and whether it has one.
    public var device: IPAddress
    public var hasDevice: Bool
    public var firstSeenNanoseconds: UInt64
    public var lastSeenNanoseconds: UInt64
    /// Packets and bytes from client to server and back.
    public var packetsToServer: UInt64
    public var packetsToClient: UInt64
    public var bytesToServer: UInt64
    public var bytesToClient: UInt64
    /// GTP-U TEID seen in each direction (0 when none).
    public var teidToServer: UInt32
    public var teidToClient: UInt32
    /// TCP: FIN seen from each side, RST seen.
    public var finFromClient: Bool
    public var finFromServer: Bool
    public var reset: Bool
    /// TCP: the initial sequence numbers of the SYN (client) and SYN-ACK (server), when seen: a stream parser
    /// that starts at the first data still knows where the stream begins.
    public var clientISN: UInt32
    public var serverISN: UInt32
    public var hasClientISN: Bool
    public var hasServerISN: Bool
    /// The application trackers' state for this flow (see `ApplicationHandles`): zero for a new flow, set with
    /// `FlowTable.setHandles`, handed back with the flow when it ends.
    public var handles: ApplicationHandles
    // LRU list links (indices into storage; -1 ends the list).
    var newer: Int32
    var older: Int32

    public var clientAddress: IPAddress { clientIsA ? key.addressA : key.addressB }
    public var serverAddress: IPAddress { clientIsA ? key.addressB : key.addressA }
    public var clientPort: UInt16 { clientIsA ? key.portA : key.portB }
    public var serverPort: UInt16 { clientIsA ? key.portB : key.portA }
}

/// Per-flow marks owned by the application trackers, kept in the flow entry so a segment finds its parser state
/// by index instead of a hash lookup per tracker. The flow table only stores them: zero when a flow starts.
public struct ApplicationHandles: Sendable, BitwiseCopyable, Equatable {
    /// HTTP: index + 1 of the connection in the HTTP tracker; 0 not followed; `done` no longer followed.
    public var http: Int32 = 0
    /// TLS: index + 1 of the client stream in the TLS tracker; 0 not followed; `done` ClientHello found;
    /// `notTLS` the stream did not start with a ClientHello (only a record that looks like one restarts it).
    public var tls: Int32 = 0
    /// HTTPS (HTTP read inside TLS with logged secrets): index + 1 of the connection in the HTTPS tracker; 0 not
    /// followed; `done` no longer followed.
    public var https: Int32 = 0
    public static let done: Int32 = -1
    public static let notTLS: Int32 = -2
    public init() {}
}

/// Counters of a flow table.
public struct FlowTableStats: Sendable {
    public var created: UInt64 = 0
    public var createdTCP: UInt64 = 0
    public var createdUDP: UInt64 = 0
    public var endedIdle: UInt64 = 0
    public var evictedLRU: UInt64 = 0
    public var endedClosed: UInt64 = 0
    public var peakActive: Int = 0
    public var withoutDevice: UInt64 = 0
    public init() {}
}

/// A bounded flow table: open addressing (linear probing, backward-shift deletion) over preallocated storage, with
/// an intrusive LRU list. No allocation after `init`. Flows idle longer than `idleTimeout` are ended as packets
/// arrive (a few per packet, oldest first); when full, the least recently used flow is evicted.
public final class FlowTable {
    public let capacity: Int
    public let idleTimeoutNanoseconds: UInt64
    /// How long a TCP flow stays after both FINs or a RST (to absorb the last ACKs). Expiry walks the LRU list
    /// from its oldest end, so a closed flow ends after this linger once it is the least recently used; otherwise
    /// at the idle timeout, or at once when a new SYN reuses its 5-tuple.
    public let closedLingerNanoseconds: UInt64
    public let subscribers: SubscriberPrefixes
    public private(set) var stats = FlowTableStats()
    public private(set) var count = 0

    let entries: UnsafeMutablePointer<FlowEntry>
    let index: UnsafeMutablePointer<Int32>
    let indexMask: Int
    private var freeList: [Int32]
    var newest: Int32 = -1
    var oldest: Int32 = -1

    /// Well-known service ports for orienting flows picked up mid-stream (beyond the < 1024 range).
    static let servicePorts: Set<UInt16> = [1080, 1194, 1433, 1521, 1935, 2152, 3128, 3306, 3478, 4433, 5060,
                                             5061, 5222, 5228, 5432, 6379, 8000, 8008, 8080, 8081, 8088, 8443,
                                             8888, 9000, 9090, 9443, 11211, 27017]
    private let servicePortBitmap: [UInt64]

    public init(capacity: Int, idleTimeoutNanoseconds: UInt64, closedLingerNanoseconds: UInt64 = 5_000_000_000,
                subscribers: SubscriberPrefixes = SubscriberPrefixes())
    {
        precondition(capacity > 0 && capacity < Int(Int32.max) / 4)
        self.capacity = capacity
        self.idleTimeoutNanoseconds = idleTimeoutNanoseconds
        self.closedLingerNanoseconds = closedLingerNanoseconds
        self.subscribers = subscribers
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        indexMask = size - 1
        index = .allocate(capacity: size)
        index.initialize(repeating: -1, count: size)
        entries = .allocate(capacity: capacity)
        freeList = (0..<Int32(capacity)).reversed().map { $0 }
        var bitmap = [UInt64](repeating: 0, count: 1024)
        for p in Self.servicePorts { bitmap[Int(p) >> 6] |= 1 << UInt64(p & 63) }
        servicePortBitmap = bitmap
    }

    deinit {
        index.deallocate()
        entries.deallocate()
    }

    func isServicePort(_ port: UInt16) -> Bool {
        port < 1024 || servicePortBitmap.withUnsafeBufferPointer { $0[Int(port) >> 6] & (1 << UInt64(port & 63)) != 0 }
    }

    /// Accounts one packet of `length` bytes (on the wire) to its flow, creating the flow if needed. Flows that end
    /// on the way (idle, LRU, closed, or a closed connection whose 5-tuple a new SYN reuses) are passed to `onEnd`
    /// before their slot is reused. Returns the flow's slot.
    
    @discardableResult
    public func track(_ p: DecodedPacket, length wireLength: Int, now: UInt64,
                      onEnd: (borrowing FlowEntry, FlowEndReason) -> Void) -> Int32
    {
        expire(now: now, limit: 2, onEnd: onEnd)
        var sourceIsA = false
        let key = FlowKey(p, sourceIsA: &sourceIsA)
        let hash = key.symmetricHash
        var slot = Int(truncatingIfNeeded: hash) & indexMask
        var found: Int32 = -1
        while true {
            let i = index[slot]
            if i < 0 { break }
            if entries[Int(i)].hash == hash && entries[Int(i)].key == key { found = i; break }
            slot = (slot + 1) & indexMask
        }
        let length = UInt64(wireLength)
        if found >= 0, p.tcpFlags & (TCPFlags.syn | TCPFlags.ack) == TCPFlags.syn, p.layers.contains(.tcp),
           entries[Int(found)].reset || (entries[Int(found)].finFromClient && entries[Int(found)].finFromServer)
        {
            // A new connection on the 5-tuple of a closed one (port reuse): end the old flow, start a new one.
            onEnd(entries[Int(found)], .closed)
            stats.endedClosed &+= 1
            remove(found)
            found = -1
            slot = Int(truncatingIfNeeded: hash) & indexMask
            while index[slot] >= 0 { slot = (slot + 1) & indexMask }
        }
        if found < 0 {
            found = insert(key: key, hash: hash, at: slot, packet: p, sourceIsA: sourceIsA, now: now, onEnd: onEnd)
        } else {
            touch(found)
        }
        let e = entries + Int(found)
        let fromA = sourceIsA
        // A SYN or SYN-ACK seen after a mid-stream pickup fixes the orientation.
        if e.pointee.orientation != .handshake && p.layers.contains(.tcp) && p.tcpFlags & TCPFlags.syn != 0 {
            let senderIsClient = p.tcpFlags & TCPFlags.ack == 0
            e.pointee.clientIsA = senderIsClient == fromA
            e.pointee.orientation = .handshake
            assignDevice(e)
        }
        let toServer = fromA == e.pointee.clientIsA
        e.pointee.lastSeenNanoseconds = now
        if toServer {
            e.pointee.packetsToServer &+= 1
            e.pointee.bytesToServer &+= length
            if p.hasTEID { e.pointee.teidToServer = p.teid }
        } else {
            e.pointee.packetsToClient &+= 1
            e.pointee.bytesToClient &+= length
            if p.hasTEID { e.pointee.teidToClient = p.teid }
        }
        if p.layers.contains(.tcp) {
            if p.tcpFlags & TCPFlags.fin != 0 {
                if toServer { e.pointee.finFromClient = true } else { e.pointee.finFromServer = true }
            }
            if p.tcpFlags & TCPFlags.rst != 0 { e.pointee.reset = true }
            if p.tcpFlags & TCPFlags.syn != 0 {
                if p.tcpFlags & TCPFlags.ack == 0 {
                    e.pointee.clientISN = p.tcpSequence; e.pointee.hasClientISN = true
                } else {
                    e.pointee.serverISN = p.tcpSequence; e.pointee.hasServerISN = true
                }
            }
        }
        return found
    }

    /// The flow in `slot` (valid until the next `track`).
    @inline(__always)
    public func entry(_ slot: Int32) -> FlowEntry { entries[Int(slot)] }

    /// Sets the application trackers' marks of the flow in `slot` (valid until the next `track`).
    @inline(__always)
    public func setHandles(_ slot: Int32, _ handles: ApplicationHandles) { entries[Int(slot)].handles = handles }


    func insert(key: FlowKey, hash: UInt64, at slot: Int, packet p: DecodedPacket, sourceIsA: Bool,
                now: UInt64, onEnd: (borrowing FlowEntry, FlowEndReason) -> Void) -> Int32
    {
        var slot = slot
        if freeList.isEmpty {
            let victim = oldest
            onEnd(entries[Int(victim)], .evictedLRU)
            stats.evictedLRU &+= 1
            remove(victim)
            // The probe position may have moved by the backward shift: find the empty slot again.
            slot = Int(truncatingIfNeeded: hash) & indexMask
            while index[slot] >= 0 { slot = (slot + 1) & indexMask }
        }
        let i = freeList.removeLast()
        // Orientation.
        var clientIsA: Bool
        var orientation: Orientation
        if p.layers.contains(.tcp) && p.tcpFlags & TCPFlags.syn != 0 {
            let senderIsClient = p.tcpFlags & TCPFlags.ack == 0
            clientIsA = senderIsClient == sourceIsA
            orientation = .handshake
        } else {
            let aService = key.portA != 0 && isServicePort(key.portA)
            let bService = key.portB != 0 && isServicePort(key.portB)
            if aService != bService {
                clientIsA = bService
                orientation = .portHeuristic
            } else if aService && bService && key.portA != key.portB {
                clientIsA = key.portA > key.portB  // both look like services: the lower port serves
                orientation = .portHeuristic
            } else {
                clientIsA = sourceIsA
                orientation = .firstPacket
            }
        }
        (entries + Int(i)).initialize(to: FlowEntry(
            key: key, hash: hash, clientIsA: clientIsA, orientation: orientation, device: .none, hasDevice: false,
            firstSeenNanoseconds: now, lastSeenNanoseconds: now, packetsToServer: 0, packetsToClient: 0,
            bytesToServer: 0, bytesToClient: 0, teidToServer: 0, teidToClient: 0, finFromClient: false,
            finFromServer: false, reset: false, clientISN: 0, serverISN: 0, hasClientISN: false, hasServerISN: false,
            handles: ApplicationHandles(), newer: -1, older: newest))
        assignDevice(entries + Int(i))
        if !entries[Int(i)].hasDevice { stats.withoutDevice &+= 1 }
        if newest >= 0 { entries[Int(newest)].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
        index[slot] = i
        count += 1
        stats.created &+= 1
        if key.ipProtocol == IPProtocol.tcp { stats.createdTCP &+= 1 }
        if key.ipProtocol == IPProtocol.udp { stats.createdUDP &+= 1 }
        if count > stats.peakActive { stats.peakActive = count }
        return i
    }

    /// The device is the client, or with subscriber prefixes the endpoint inside them (none if neither is).
    func assignDevice(_ e: UnsafeMutablePointer<FlowEntry>) {
        let client = e.pointee.clientAddress, server = e.pointee.serverAddress
        if subscribers.isEmpty {
            e.pointee.device = client; e.pointee.hasDevice = true
        } else if subscribers.contains(client) {
            e.pointee.device = client; e.pointee.hasDevice = true
        } else if subscribers.contains(server) {
            e.pointee.device = server; e.pointee.hasDevice = true
        } else {
            e.pointee.device = .none; e.pointee.hasDevice = false
        }
    }

    func touch(_ i: Int32) {
        guard newest != i else { return }
        unlink(i)
        entries[Int(i)].older = newest
        entries[Int(i)].newer = -1
        if newest >= 0 { entries[Int(newest)].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }

    func unlink(_ i: Int32) {
        let e = entries[Int(i)]
        if e.newer >= 0 { entries[Int(e.newer)].older = e.older } else { newest = e.older }
        if e.older >= 0 { entries[Int(e.older)].newer = e.newer } else { oldest = e.newer }
    }

    /// Removes flow `i` from the index (backward-shift deletion keeps probe chains intact) and the LRU list.
    func remove(_ i: Int32) {
        var slot = Int(truncatingIfNeeded: entries[Int(i)].hash) & indexMask
        while index[slot] != i { slot = (slot + 1) & indexMask }
        var hole = slot
        var next = (hole + 1) & indexMask
        while index[next] >= 0 {
            let home = Int(truncatingIfNeeded: entries[Int(index[next])].hash) & indexMask
            // Move the entry back if the hole lies cyclically within [home, next).
            if (next - home) & indexMask >= (next - hole) & indexMask {
                index[hole] = index[next]
                hole = next
            }
            next = (next + 1) & indexMask
        }
        index[hole] = -1
        unlink(i)
        freeList.append(i)
        count -= 1
    }

    /// Ends up to `limit` flows that are idle (or closed and lingered), oldest first.
    
    public func expire(now: UInt64, limit: Int, onEnd: (borrowing FlowEntry, FlowEndReason) -> Void) {
        var n = 0
        while n < limit, oldest >= 0 {
            let e = entries[Int(oldest)]
            let idle = now &- e.lastSeenNanoseconds
            if now > e.lastSeenNanoseconds && idle > idleTimeoutNanoseconds {
                onEnd(e, .idle)
                stats.endedIdle &+= 1
            } else if (e.reset || (e.finFromClient && e.finFromServer)) && now > e.lastSeenNanoseconds
                && idle > closedLingerNanoseconds
            {
                onEnd(e, .closed)
                stats.endedClosed &+= 1
            } else {
                return  // the oldest is still live: so is everything newer
            }
            remove(oldest)
            n += 1
        }
    }

    /// Ends every flow (at the end of a run), oldest first.
    public func flush(onEnd: (borrowing FlowEntry, FlowEndReason) -> Void) {
        while oldest >= 0 {
            onEnd(entries[Int(oldest)], .flushed)
            remove(oldest)
        }
    }
}
