// Seed bodies for the API harness: one of each body type the API takes, valid, and a few near misses (long
// fractions, duplicate keys, leading zeros, metadata addresses), each after its type byte.
import FuzzSupport

func apiSeeds() -> [Seed] {
    let bodies: [(String, UInt8, String)] = [
        ("migration", 0, #"{"device": "10.45.0.9", "from": "edge-a", "to": "edge-b", "deadline": "2030-01-01T00:00:00Z"}"#),
        ("migration-long-fraction", 0,
         #"{"device": "2001:db8::9", "to": "edge-b", "deadline": "2030-01-01T00:00:00."# + String(repeating: "9", count: 40) + #"+02:00"}"#),
        ("migration-duplicate", 0, #"{"device": "10.45.0.9", "to": "edge-b", "to": "edge-a"}"#),
        ("migration-octal", 0, #"{"device": "010.000.000.001", "to": "edge-b", "deadline": "2016-12-31T23:59:60z"}"#),
        ("cell-change", 1, #"{"notificationType": "CellChangeNotification", "hoStatus": 1, "associateId": [{"type": 1, "value": "10.45.0.9"}], "srcEcgi": {"plmn": {"mcc": "001", "mnc": "01"}, "cellId": "000000A"}, "trgEcgi": [{"cellId": "000000B"}]}"#),
        ("cell-change-names", 1, #"{"hoStatus": "IN_PREPARATION", "associateId": [{"type": "UE_IPV6_ADDRESS", "value": "2001:db8::1"}], "trgEcgi": [{"cellId": "cell-b"}]}"#),
        ("mobility", 2, #"{"notificationType": "MobilityProcedureNotification", "mobilityStatus": 1, "associateId": [{"type": 1, "value": "10.45.0.9"}], "targetAppInfo": {"appInstanceId": "edge-b", "commInterface": {"ipAddresses": [{"host": "10.77.9.2", "port": 9090}]}}}"#),
        ("edges", 3, #"{"edges": [{"name": "edge-a", "agent": "http://10.77.9.3:9090"}, {"name": "edge-b", "agent": "https://[2001:db8::2]:9090"}], "cells": {"cell-a": "edge-a", "cell-b": "edge-b"}, "policies": [{"host": "*.example", "method": "prefetch"}]}"#),
        ("edges-bad", 3, #"{"edges": [{"name": "", "agent": "http://169.254.169.254/"}, {"name": "e", "agent": "ftp://x"}], "cells": {"a b": "z"}}"#),
        ("text-url", 4, "http://[fe80::1%25eth0]:8080/agent"),
        ("text-time", 4, "2028-02-29T12:30:00.000000001-05:00"),
        ("edge-node", 5, #"{"name": "edge-c", "agent": "http://[::ffff:169.254.169.254]/"}"#),
    ]
    return bodies.map { Seed($0.0, [$0.1] + ascii($0.2)) }
}

let apiDictionary: [[UInt8]] = [
    #""device""#, #""to""#, #""from""#, #""deadline""#, #""hoStatus""#, #""associateId""#, #""type""#, #""value""#,
    #""srcEcgi""#, #""trgEcgi""#, #""cellId""#, #""plmn""#, #""mobilityStatus""#, #""targetAppInfo""#,
    #""appInstanceId""#, #""commInterface""#, #""ipAddresses""#, #""host""#, #""port""#, #""edges""#, #""cells""#,
    #""policies""#, #""name""#, #""agent""#, "T00:00:00", ".999999999", "Z", "+14:00", "-00:00", ":60", "2030-",
    "-02-29", "::ffff:", "fe80::", "169.254.", "0.0.0.0", "http://", "https://", "[", "]", "\\u0000", "\\\"",
    "1e309", "-0", "18446744073709551616", "null", "true",
].map(ascii)
