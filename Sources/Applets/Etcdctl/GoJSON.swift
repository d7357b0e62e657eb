import EtcdClient
import GoFormat
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Encodes protobuf messages the way Go's `encoding/json` encodes etcd's gogoproto
/// structs, which is what `etcdctl -w json` prints: fields in declaration order under
/// their proto names, zero values omitted (`omitempty`), 64-bit integers as numbers,
/// enums as numbers, bytes as standard base64, strings with Go's HTML-safe escaping, and a
/// oneof as an object named after it (`{"Response":{"response_range":{…}}}`).
enum GoJSON {
    static func encode(_ message: some SwiftProtobuf.Message) -> String {
        let names = EtcdFieldNames.byMessage[type(of: message).protoMessageName] ?? [:]
        var visitor = GoJSONVisitor(names: names, oneofWrapper: oneofWrapper(of: message))
        try? message.traverse(visitor: &visitor)
        return visitor.finish()
    }

    /// Go names a oneof field after the oneof in CamelCase; only these messages have one
    /// that etcdctl prints.
    private static func oneofWrapper(of message: some SwiftProtobuf.Message) -> String? {
        switch message {
        case is EtcdAPIOneofs.ResponseOp: return "Response"
        case is EtcdAPIOneofs.RequestOp: return "Request"
        default: return nil
        }
    }

    /// A JSON string literal with Go's escaping.
    static func quote(_ text: String) -> String { GoJSONString.quote(text) }
}

import EtcdAPI

/// Message types with a oneof that Go wraps in an extra object.
enum EtcdAPIOneofs {
    typealias ResponseOp = Etcdserverpb_ResponseOp
    typealias RequestOp = Etcdserverpb_RequestOp
}

private struct GoJSONVisitor: SwiftProtobuf.Visitor {
    let names: [Int: String]
    let oneofWrapper: String?
    var members: [String] = []

    init(names: [Int: String], oneofWrapper: String?) {
        self.names = names
        self.oneofWrapper = oneofWrapper
    }

    func finish() -> String {
        let body = "{" + members.joined(separator: ",") + "}"
        if let oneofWrapper, !members.isEmpty { return "{\"\(oneofWrapper)\":\(body)}" }
        return body
    }

    private func name(_ number: Int) -> String {
        let protoName = names[number] ?? "field\(number)"
        // Inside a oneof Go has no json tag, so the Go field name (UpperCamelCase) is used.
        return oneofWrapper == nil ? protoName : Self.upperCamelCase(protoName)
    }

    static func upperCamelCase(_ name: String) -> String {
        name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    private mutating func add(_ number: Int, _ json: String) {
        members.append(GoJSON.quote(name(number)) + ":" + json)
    }

    private static func base64(_ data: Data) -> String { "\"" + data.base64EncodedString() + "\"" }

    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularInt32Field(value: Int32, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularUInt32Field(value: UInt32, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws { add(fieldNumber, "\(value)") }
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {
        add(fieldNumber, GoJSON.quote(value))
    }
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws { add(fieldNumber, Self.base64(value)) }
    mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws {
        add(fieldNumber, "\(value.rawValue)")
    }
    mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        add(fieldNumber, GoJSON.encode(value))
    }
    mutating func visitSingularGroupField<G: SwiftProtobuf.Message>(value: G, fieldNumber: Int) throws {
        add(fieldNumber, GoJSON.encode(value))
    }
    mutating func visitRepeatedInt64Field(value: [Int64], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map { "\($0)" }.joined(separator: ",") + "]")
    }
    mutating func visitRepeatedUInt64Field(value: [UInt64], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map { "\($0)" }.joined(separator: ",") + "]")
    }
    mutating func visitPackedInt64Field(value: [Int64], fieldNumber: Int) throws {
        try visitRepeatedInt64Field(value: value, fieldNumber: fieldNumber)
    }
    mutating func visitPackedUInt64Field(value: [UInt64], fieldNumber: Int) throws {
        try visitRepeatedUInt64Field(value: value, fieldNumber: fieldNumber)
    }
    mutating func visitRepeatedStringField(value: [String], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map(GoJSON.quote).joined(separator: ",") + "]")
    }
    mutating func visitRepeatedBytesField(value: [Data], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map(Self.base64).joined(separator: ",") + "]")
    }
    mutating func visitRepeatedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map { "\($0.rawValue)" }.joined(separator: ",") + "]")
    }
    mutating func visitPackedEnumField<E: SwiftProtobuf.Enum>(value: [E], fieldNumber: Int) throws {
        try visitRepeatedEnumField(value: value, fieldNumber: fieldNumber)
    }
    mutating func visitRepeatedMessageField<M: SwiftProtobuf.Message>(value: [M], fieldNumber: Int) throws {
        add(fieldNumber, "[" + value.map { GoJSON.encode($0) }.joined(separator: ",") + "]")
    }
    mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {}
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws {}
    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType,
        fieldNumber: Int
    ) throws {}
    mutating func visitUnknown(bytes: Data) throws {}
}
