public import GRPCCore

/// Calls by method path with the messages as bytes, for a proxy that passes requests on
/// without decoding them (`coreos etcd grpc-proxy`). The client's failover, deadlines and
/// auth token apply as for typed calls; `metadata` (say, a caller's token) is added.
extension EtcdClient {
    /// One unary call to `/service/Method`.
    public func forwardUnary(
        service: String, method: String, request: [UInt8], metadata extra: Metadata = [:]
    ) async throws(EtcdError) -> [UInt8] {
        let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
        let grpc = self.grpc
        return try await call { metadata, options in
            var all = metadata
            all.add(contentsOf: extra)
            return try await grpc.unary(
                request: ClientRequest(message: request, metadata: all), descriptor: descriptor,
                serializer: RawBytesSerializer(), deserializer: RawBytesDeserializer(), options: options
            ) { response in try response.message }
        }
    }

    /// A streaming call: `requests` go up as they come, each response goes to `onResponse`.
    /// Returns when the server ends the stream; throws its status.
    public func forwardStream(
        service: String, method: String, requests: AsyncThrowingStream<[UInt8], any Error>, metadata extra: Metadata = [:],
        onResponse: @escaping @Sendable ([UInt8]) async throws -> Void
    ) async throws {
        let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
        var all = metadata
        all.add(contentsOf: extra)
        let request = StreamingClientRequest<[UInt8]>(metadata: all) { writer in
            for try await message in requests { try await writer.write(message) }
        }
        do {
            try await grpc.bidirectionalStreaming(
                request: request, descriptor: descriptor, serializer: RawBytesSerializer(), deserializer: RawBytesDeserializer(),
                options: streamOptions
            ) { response in
                for try await message in response.messages { try await onResponse(message) }
            }
        } catch {
            throw EtcdError.wrap(error)
        }
    }
}

struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
