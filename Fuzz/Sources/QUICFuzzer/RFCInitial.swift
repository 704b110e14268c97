// The client Initial of RFC 9001 Appendix A.2 (QUIC v1) and RFC 9369 Appendix A.2 (QUIC v2): DCID
// 8394c8f03e515708, packet number 2 in 4 bytes, a 245-byte payload (one CRYPTO frame with a ClientHello for
// example.com) padded with 917 zeros. Seeds, and a check that InitialBuilder protects packets as the RFCs do.
import Extract
import StatetapTestSupport

enum RFCInitial {
    static let dcid = hex("8394c8f03e515708")
    static let version2: UInt32 = 0x6b33_43cf
    /// The unprotected payload: the CRYPTO frame (type 6, offset 0, length 241), before the padding.
    static let payload = hex(initialVectors[0].payloadHex.filter { !$0.isWhitespace })
    static let paddingZeros = initialVectors[0].paddingZeros
    static let protectedV1 = initialVectors[0].protectedPacket
    static let protectedV2 = initialVectors[1].protectedPacket
}
