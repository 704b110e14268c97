import Decode

/// One TCP connection's bytes as frames: the handshake, each step's bytes cut into segments of at most `mss`, then
/// both FINs. For tests and benchmarks that need a whole connection of some protocol, not single packets.
public struct TCPConversation: Sendable {
    public enum Step: Sendable {
        case client([UInt8])
        case server([UInt8])
    }

    public var client: IPAddress
    public var server: IPAddress
    public var clientPort: UInt16
    public var serverPort: UInt16
    public var mss = 1400

    public init(client: IPAddress, server: IPAddress, clientPort: UInt16, serverPort: UInt16) {
        self.client = client
        self.server = server
        self.clientPort = clientPort
        self.serverPort = serverPort
    }

    public func frames(_ steps: [Step]) -> [[UInt8]] {
        let v6 = client.isIPv6
        func tcp(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: UInt8, _ data: [UInt8] = []) -> [UInt8] {
            let (s, d) = fromClient ? (client, server) : (server, client)
            return PacketBuilder.build([.ethernet(), v6 ? .ipv6(src: s, dst: d) : .ipv4(src: s, dst: d),
                                        fromClient ? .tcp(src: clientPort, dst: serverPort, seq: seq, ack: ack, flags: flags)
                                                   : .tcp(src: serverPort, dst: clientPort, seq: seq, ack: ack, flags: flags),
                                        .payload(data)])
        }
        var c: UInt32 = 1000, s: UInt32 = 9000
        var out = [tcp(true, seq: c, ack: 0, flags: TCPFlags.syn)]
        c &+= 1
        out.append(tcp(false, seq: s, ack: c, flags: TCPFlags.synAck))
        s &+= 1
        for step in steps {
            let (fromClient, data): (Bool, [UInt8]) = switch step {
            case .client(let d): (true, d)
            case .server(let d): (false, d)
            }
            var at = 0
            while at < data.count {
                let piece = Array(data[at..<min(at + mss, data.count)])
                if fromClient {
                    out.append(tcp(true, seq: c, ack: s, flags: TCPFlags.psh | TCPFlags.ack, piece))
                    c &+= UInt32(piece.count)
                } else {
                    out.append(tcp(false, seq: s, ack: c, flags: TCPFlags.psh | TCPFlags.ack, piece))
                    s &+= UInt32(piece.count)
                }
                at += piece.count
            }
        }
        out.append(tcp(true, seq: c, ack: s, flags: TCPFlags.fin | TCPFlags.ack))
        out.append(tcp(false, seq: s, ack: c &+ 1, flags: TCPFlags.fin | TCPFlags.ack))
        return out
    }
}
