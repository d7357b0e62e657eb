import HTTPServer
import EtcdAPI
import Foundation
import GoFormat
import GRPCCore
import NIOHTTP1
import Synchronization
import SwiftProtobuf

/// etcd's v3 JSON gateway: `POST /v3/<service>/<method>` (and the older `/v3beta/`) with a
/// proto3 JSON body calls the same gRPC method the client port serves, and answers in
/// proto3 JSON with the proto's own field names (etcd's `OrigName`), 64-bit integers as
/// strings, bytes in base64 and zero values left out. Streaming methods (`/v3/watch`,
/// `/v3/lease/keepalive`, `/v3/maintenance/snapshot`, `/v3/election/observe`) answer with
/// one `{"result":…}` line per message over a chunked response.
///
/// Calls go through the `GRPCRouter` without a network hop, so the gateway serves exactly
/// what gRPC serves: the store's methods, or the proxy's when the member is a proxy.
struct V3JSONGateway: HTTPResponder {
    let router: GRPCRouter
    /// Everything that is not `/v3/…`.
    let fallback: any HTTPResponder
    /// `--max-concurrent-streams` over the gateway's calls, as etcd's one connection has it.
    var streamLimit: StreamLimiter? = nil

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = request.path
        let rest: Substring
        if path.hasPrefix("/v3/") {
            rest = path.dropFirst(4)
        } else if path.hasPrefix("/v3beta/") {
            rest = path.dropFirst(8)
        } else {
            return await fallback.respond(to: request)
        }
        guard let route = Self.routes[String(rest)], let method = router.methods[route.grpcPath] else {
            return Self.plainError(.notFound)
        }
        guard request.method == .POST else { return Self.plainError(.methodNotAllowed) }
        var caller = CallerCredentials()
        caller.token = request.headers.first(name: "Authorization")
        caller.certificateCommonName = request.certificateCommonName
        if router.refusesForLearner(route.grpcPath) { return Self.errorResponse(GRPCRouter.notForLearner) }

        let messages: [[UInt8]]
        do {
            messages = try Self.requestMessages(request.body, route: route)
        } catch {
            // grpc-gateway reports what a stream's body does not decode to as Unknown (500).
            return Self.errorResponse(route.streams ? RPCError(code: .unknown, message: error.message) : error, fromCall: false)
        }
        let context = ServerContext(
            descriptor: method.descriptor, remotePeer: "gateway", localPeer: "gateway", cancellation: .init())
        if route.streams {
            return streamingResponse(route: route, method: method.method, messages: messages, context: context, caller: caller)
        }
        let message = messages.first ?? []
        if let streamLimit {
            guard await streamLimit.acquire() else { return Self.errorResponse(RPCError(code: .cancelled, message: "context canceled")) }
        }
        let result = await Self.callOnce(method.method, message, context: context, caller: caller)
        streamLimit?.release()
        switch result {
        case .success(let bytes):
            do {
                var response = HTTPResponse(.ok, contentType: "application/json", bytes: try route.encode(bytes))
                response.headers.append(Self.metadataHeader)
                return response
            } catch {
                return Self.errorResponse(RPCError(code: .internalError, message: "\(error)"))
            }
        case .failure(let error):
            return Self.errorResponse(error)
        }
    }

    /// JSON fields that hold bytes (base64 in JSON): checked as Go checks them when a body
    /// does not decode, to name the bad byte as etcd does.
    static let bytesFields: Set<String> = ["key", "range_end", "rangeEnd", "value"]

    /// Enum fields by JSON name: Go's name of the enum type (for its error text) and the
    /// value names it takes.
    static let enumFields: [String: (String, Set<String>)] = {
        let sortOrder = ("etcdserverpb.RangeRequest_SortOrder", Set(["NONE", "ASCEND", "DESCEND"]))
        let sortTarget = ("etcdserverpb.RangeRequest_SortTarget", Set(["KEY", "VERSION", "CREATE", "MOD", "VALUE"]))
        let permission = ("authpb.Permission_Type", Set(["READ", "WRITE", "READWRITE"]))
        return [
            "sort_order": sortOrder, "sortOrder": sortOrder, "sort_target": sortTarget, "sortTarget": sortTarget,
            "result": ("etcdserverpb.Compare_CompareResult", ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"]),
            "target": ("etcdserverpb.Compare_CompareTarget", ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"]),
            "action": ("etcdserverpb.AlarmRequest_AlarmAction", ["GET", "ACTIVATE", "DEACTIVATE"]),
            "alarm": ("etcdserverpb.AlarmType", ["NONE", "NOSPACE", "CORRUPT"]),
            "filters": ("etcdserverpb.WatchCreateRequest_FilterType", ["NOPUT", "NODELETE"]),
            "permType": permission, "perm_type": permission,
        ]
    }()

    /// The body's JSON values (several for a stream) as protobuf messages. Errors are
    /// etcd's: Go's syntax and base64 messages, `InvalidArgument`.
    static func requestMessages(_ body: [UInt8], route: Route) throws(RPCError) -> [[UInt8]] {
        let scanned: (values: [Range<Int>], noted: [GoJSONScanner.NotedString])
        do {
            scanned = try GoJSONScanner.values(in: body, noting: ["*"])
        } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        var messages: [[UInt8]] = []
        for range in scanned.values {
            do {
                messages.append(try route.decode(Array(body[range])))
            } catch {
                // SwiftProtobuf's errors are terse; name the fault as Go's decoder would.
                let base64 = scanned.noted.lazy.filter { bytesFields.contains($0.key) }.compactMap {
                    GoJSONScanner.base64Error($0.text)
                }.first
                let enumeration = scanned.noted.lazy.compactMap { noted -> String? in
                    guard let (goName, names) = enumFields[noted.key], !names.contains(noted.text) else { return nil }
                    return "unknown value \"\(noted.text)\" for enum \(goName)"
                }.first
                let number =
                    "\(error)" == "malformedNumber"
                    ? scanned.noted.lazy.filter { !bytesFields.contains($0.key) }.compactMap {
                        GoJSONScanner.quotedNumberError($0.text)
                    }.first : nil
                throw RPCError(code: .invalidArgument, message: base64 ?? enumeration ?? number ?? "cannot decode the request: \(error)")
            }
        }
        return messages
    }

    /// A unary method's one answer, whatever kind of method serves it.
    private static func callOnce(
        _ method: GRPCMethod, _ message: [UInt8], context: ServerContext, caller: CallerCredentials
    ) async -> Result<[UInt8], RPCError> {
        switch method {
        case .unary(let body):
            do {
                return .success(try await body(message, context, caller))
            } catch {
                return .failure(GRPCConnectionHandler.rpcError(error))
            }
        case .direct(let body):
            return await withCheckedContinuation { continuation in
                body(message, GRPCReply(sink: GRPCResponseSink(target: OneAnswer(continuation), caller: caller)))
            }
        case .streaming:
            return .failure(RPCError(code: .unimplemented, message: "a streaming method has no unary gateway"))
        }
    }

    private func streamingResponse(
        route: Route, method: GRPCMethod, messages: [[UInt8]], context: ServerContext, caller: CallerCredentials
    ) -> HTTPResponse {
        var response = HTTPResponse(.ok, contentType: "application/json", body: "")
        response.headers.append(Self.metadataHeader)
        let streamLimit = self.streamLimit
        response.stream = HTTPBodyStream { writer in
            if let streamLimit {
                guard await streamLimit.acquire() else { return }
            }
            defer { streamLimit?.release() }
            let (requests, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            for message in messages { continuation.yield(message) }
            // etcd's watch stream outlives the request body; a keep-alive stream ends with it.
            if !route.outlivesBody { continuation.finish() }
            let target = StreamedAnswers(writer: writer, encode: route.encode)
            let sink = GRPCResponseSink(target: target, caller: caller)
            var failure: RPCError?
            switch method {
            case .streaming(let body):
                do {
                    try await withTaskCancellationHandler {
                        try await body(requests, sink, context)
                    } onCancel: {
                        continuation.finish()
                    }
                } catch {
                    failure = GRPCConnectionHandler.rpcError(error)
                }
            case .unary, .direct:
                switch await Self.callOnce(method, messages.first ?? [], context: context, caller: caller) {
                case .success(let bytes): try? await target.send(bytes)
                case .failure(let error): failure = error
                }
            }
            continuation.finish()
            if let failure, !Task.isCancelled {
                try? await writer.write(Array(Self.streamError(failure).utf8))
            }
        }
        return response
    }

    // MARK: Errors

    /// grpc-gateway's HTTP status for a gRPC code.
    static func httpStatus(_ code: RPCError.Code) -> HTTPResponseStatus {
        switch code {
        case .cancelled: .requestTimeout
        case .unknown, .internalError, .dataLoss: .internalServerError
        case .invalidArgument, .outOfRange: .badRequest
        case .deadlineExceeded: .gatewayTimeout
        case .notFound: .notFound
        case .alreadyExists, .aborted: .conflict
        case .permissionDenied: .forbidden
        case .unauthenticated: .unauthorized
        case .resourceExhausted: .tooManyRequests
        case .failedPrecondition: .preconditionFailed
        case .unimplemented: .notImplemented
        case .unavailable: .serviceUnavailable
        default: .internalServerError
        }
    }

    /// The response metadata grpc-gateway passes on from the gRPC call.
    static let metadataHeader = ("Grpc-Metadata-Content-Type", "application/grpc")

    /// A unary call's error: `{"error":…,"message":…,"code":…}` with the mapped status.
    /// grpc-gateway writes a call's error chunked with the gRPC trailer after it; a body it
    /// could not decode never reached a call, and is answered plainly.
    static func errorResponse(_ error: RPCError, fromCall: Bool = true) -> HTTPResponse {
        let message = GoJSONString.quote(error.message)
        let text = #"{"error":\#(message),"message":\#(message),"code":\#(error.code.rawValue)}"#
        guard fromCall else { return HTTPResponse(httpStatus(error.code), contentType: "application/json", body: text) }
        let body = Array(text.utf8)
        var response = HTTPResponse(httpStatus(error.code), contentType: "application/json", body: "")
        response.headers.append(("Trailer", "Grpc-Trailer-Content-Type"))
        response.stream = HTTPBodyStream { writer in try? await writer.write(body) }
        response.trailers = [("Grpc-Trailer-Content-Type", "application/grpc")]
        return response
    }

    /// A stream's error, after its `200 OK` went out.
    static func streamError(_ error: RPCError) -> String {
        let status = httpStatus(error.code)
        return #"{"error":{"grpc_code":\#(error.code.rawValue),"http_code":\#(status.code),"message":\#(GoJSONString.quote(error.message)),"http_status":\#(GoJSONString.quote(status.reasonPhrase))}}"#
            + "\n"
    }

    /// The gateway's answer for an unknown path or method: Go's `http.Error` text.
    static func plainError(_ status: HTTPResponseStatus) -> HTTPResponse {
        var response = HTTPResponse(status, contentType: "text/plain; charset=utf-8", body: status.reasonPhrase + "\n")
        response.headers.append(("X-Content-Type-Options", "nosniff"))
        return response
    }
}

// MARK: Routes

extension V3JSONGateway {
    /// One gateway path: the gRPC method behind it and its JSON ↔ protobuf conversions.
    struct Route: Sendable {
        let grpcPath: String
        let decode: @Sendable ([UInt8]) throws -> [UInt8]
        let encode: @Sendable ([UInt8]) throws -> [UInt8]
        var streams = false
        var outlivesBody = false
    }

    static let decodingOptions: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    static let encodingOptions: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    static func route<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ grpcPath: String, _ request: Request.Type, _ response: Response.Type, streams: Bool = false, outlivesBody: Bool = false
    ) -> Route {
        Route(
            grpcPath: grpcPath,
            decode: { json in
                // Go's decoder skips unknown fields but refuses unknown enum names: strict
                // first, lenient only when the fault was an unknown field.
                do {
                    return try Request(jsonUTF8Bytes: json).serializedBytes()
                } catch JSONDecodingError.unknownField {
                    return try Request(jsonUTF8Bytes: json, options: decodingOptions).serializedBytes()
                }
            },
            encode: { bytes in
                try Response(serializedBytes: bytes).jsonUTF8Bytes(options: encodingOptions)
            },
            streams: streams, outlivesBody: outlivesBody)
    }

    /// etcd 3.4's gateway paths (below `/v3/`).
    static let routes: [String: Route] = {
        var table: [String: Route] = [:]
        func add(_ paths: [String], _ route: Route) { for path in paths { table[path] = route } }
        let kv = "/etcdserverpb.KV/", lease = "/etcdserverpb.Lease/", cluster = "/etcdserverpb.Cluster/"
        let maintenance = "/etcdserverpb.Maintenance/", auth = "/etcdserverpb.Auth/"
        add(["kv/range"], route(kv + "Range", Etcdserverpb_RangeRequest.self, Etcdserverpb_RangeResponse.self))
        add(["kv/put"], route(kv + "Put", Etcdserverpb_PutRequest.self, Etcdserverpb_PutResponse.self))
        add(["kv/deleterange"], route(kv + "DeleteRange", Etcdserverpb_DeleteRangeRequest.self, Etcdserverpb_DeleteRangeResponse.self))
        add(["kv/txn"], route(kv + "Txn", Etcdserverpb_TxnRequest.self, Etcdserverpb_TxnResponse.self))
        add(["kv/compaction"], route(kv + "Compact", Etcdserverpb_CompactionRequest.self, Etcdserverpb_CompactionResponse.self))
        add(
            ["watch"],
            route(
                "/etcdserverpb.Watch/Watch", Etcdserverpb_WatchRequest.self, Etcdserverpb_WatchResponse.self, streams: true,
                outlivesBody: true))
        add(["lease/grant"], route(lease + "LeaseGrant", Etcdserverpb_LeaseGrantRequest.self, Etcdserverpb_LeaseGrantResponse.self))
        add(
            ["lease/revoke", "kv/lease/revoke"],
            route(lease + "LeaseRevoke", Etcdserverpb_LeaseRevokeRequest.self, Etcdserverpb_LeaseRevokeResponse.self))
        add(
            ["lease/keepalive"],
            route(lease + "LeaseKeepAlive", Etcdserverpb_LeaseKeepAliveRequest.self, Etcdserverpb_LeaseKeepAliveResponse.self, streams: true))
        add(
            ["lease/timetolive", "kv/lease/timetolive"],
            route(lease + "LeaseTimeToLive", Etcdserverpb_LeaseTimeToLiveRequest.self, Etcdserverpb_LeaseTimeToLiveResponse.self))
        add(
            ["lease/leases", "kv/lease/leases"],
            route(lease + "LeaseLeases", Etcdserverpb_LeaseLeasesRequest.self, Etcdserverpb_LeaseLeasesResponse.self))
        add(["cluster/member/add"], route(cluster + "MemberAdd", Etcdserverpb_MemberAddRequest.self, Etcdserverpb_MemberAddResponse.self))
        add(
            ["cluster/member/remove"],
            route(cluster + "MemberRemove", Etcdserverpb_MemberRemoveRequest.self, Etcdserverpb_MemberRemoveResponse.self))
        add(
            ["cluster/member/update"],
            route(cluster + "MemberUpdate", Etcdserverpb_MemberUpdateRequest.self, Etcdserverpb_MemberUpdateResponse.self))
        add(["cluster/member/list"], route(cluster + "MemberList", Etcdserverpb_MemberListRequest.self, Etcdserverpb_MemberListResponse.self))
        add(
            ["cluster/member/promote"],
            route(cluster + "MemberPromote", Etcdserverpb_MemberPromoteRequest.self, Etcdserverpb_MemberPromoteResponse.self))
        add(["maintenance/alarm"], route(maintenance + "Alarm", Etcdserverpb_AlarmRequest.self, Etcdserverpb_AlarmResponse.self))
        add(["maintenance/status"], route(maintenance + "Status", Etcdserverpb_StatusRequest.self, Etcdserverpb_StatusResponse.self))
        add(
            ["maintenance/defragment"],
            route(maintenance + "Defragment", Etcdserverpb_DefragmentRequest.self, Etcdserverpb_DefragmentResponse.self))
        // etcd 3.4 binds Hash and HashKV to the same path and Hash answers it; later
        // releases give HashKV its own path, which we serve too.
        add(["maintenance/hash"], route(maintenance + "Hash", Etcdserverpb_HashRequest.self, Etcdserverpb_HashResponse.self))
        add(["maintenance/hashkv"], route(maintenance + "HashKV", Etcdserverpb_HashKVRequest.self, Etcdserverpb_HashKVResponse.self))
        add(
            ["maintenance/snapshot"],
            route(maintenance + "Snapshot", Etcdserverpb_SnapshotRequest.self, Etcdserverpb_SnapshotResponse.self, streams: true))
        add(
            ["maintenance/transfer-leadership"],
            route(maintenance + "MoveLeader", Etcdserverpb_MoveLeaderRequest.self, Etcdserverpb_MoveLeaderResponse.self))
        add(["auth/enable"], route(auth + "AuthEnable", Etcdserverpb_AuthEnableRequest.self, Etcdserverpb_AuthEnableResponse.self))
        add(["auth/disable"], route(auth + "AuthDisable", Etcdserverpb_AuthDisableRequest.self, Etcdserverpb_AuthDisableResponse.self))
        add(
            ["auth/authenticate"],
            route(auth + "Authenticate", Etcdserverpb_AuthenticateRequest.self, Etcdserverpb_AuthenticateResponse.self))
        add(["auth/user/add"], route(auth + "UserAdd", Etcdserverpb_AuthUserAddRequest.self, Etcdserverpb_AuthUserAddResponse.self))
        add(["auth/user/get"], route(auth + "UserGet", Etcdserverpb_AuthUserGetRequest.self, Etcdserverpb_AuthUserGetResponse.self))
        add(["auth/user/list"], route(auth + "UserList", Etcdserverpb_AuthUserListRequest.self, Etcdserverpb_AuthUserListResponse.self))
        add(
            ["auth/user/delete"],
            route(auth + "UserDelete", Etcdserverpb_AuthUserDeleteRequest.self, Etcdserverpb_AuthUserDeleteResponse.self))
        add(
            ["auth/user/changepw"],
            route(
                auth + "UserChangePassword", Etcdserverpb_AuthUserChangePasswordRequest.self,
                Etcdserverpb_AuthUserChangePasswordResponse.self))
        add(
            ["auth/user/grant"],
            route(auth + "UserGrantRole", Etcdserverpb_AuthUserGrantRoleRequest.self, Etcdserverpb_AuthUserGrantRoleResponse.self))
        add(
            ["auth/user/revoke"],
            route(auth + "UserRevokeRole", Etcdserverpb_AuthUserRevokeRoleRequest.self, Etcdserverpb_AuthUserRevokeRoleResponse.self))
        add(["auth/role/add"], route(auth + "RoleAdd", Etcdserverpb_AuthRoleAddRequest.self, Etcdserverpb_AuthRoleAddResponse.self))
        add(["auth/role/get"], route(auth + "RoleGet", Etcdserverpb_AuthRoleGetRequest.self, Etcdserverpb_AuthRoleGetResponse.self))
        add(["auth/role/list"], route(auth + "RoleList", Etcdserverpb_AuthRoleListRequest.self, Etcdserverpb_AuthRoleListResponse.self))
        add(
            ["auth/role/delete"],
            route(auth + "RoleDelete", Etcdserverpb_AuthRoleDeleteRequest.self, Etcdserverpb_AuthRoleDeleteResponse.self))
        add(
            ["auth/role/grant"],
            route(
                auth + "RoleGrantPermission", Etcdserverpb_AuthRoleGrantPermissionRequest.self,
                Etcdserverpb_AuthRoleGrantPermissionResponse.self))
        add(
            ["auth/role/revoke"],
            route(
                auth + "RoleRevokePermission", Etcdserverpb_AuthRoleRevokePermissionRequest.self,
                Etcdserverpb_AuthRoleRevokePermissionResponse.self))
        for (path, route) in lockAndElectionRoutes { table[path] = route }
        return table
    }()
}

// MARK: Answer targets

/// A unary call's answer, handed to the waiting gateway request.
private final class OneAnswer: GRPCResponseTarget {
    private let continuation: Mutex<CheckedContinuation<Result<[UInt8], RPCError>, Never>?>

    init(_ continuation: CheckedContinuation<Result<[UInt8], RPCError>, Never>) {
        self.continuation = Mutex(continuation)
    }

    private func resume(_ result: Result<[UInt8], RPCError>) {
        continuation.withLock { pending in
            pending?.resume(returning: result)
            pending = nil
        }
    }

    func send(_ message: [UInt8]) async throws { resume(.success(message)) }
    func respond(_ message: [UInt8]) { resume(.success(message)) }
    func finish(_ error: RPCError?) {
        resume(.failure(error ?? RPCError(code: .internalError, message: "the call ended without an answer")))
    }
}

/// A streaming call's answers, each written as a `{"result":…}` line.
private struct StreamedAnswers: GRPCResponseTarget {
    let writer: HTTPChunkWriter
    let encode: @Sendable ([UInt8]) throws -> [UInt8]

    func send(_ message: [UInt8]) async throws {
        try await writer.write(Array(#"{"result":"#.utf8) + encode(message) + Array("}\n".utf8))
    }

    func respond(_ message: [UInt8]) {}
    func finish(_ error: RPCError?) {}
}
