import EtcdAPI
import Foundation
import GRPCCore
import NIOCore
import SwiftProtobuf

/// One gRPC method as our HTTP/2 server calls it: bytes in, bytes out. The services are
/// the same ones grpc-swift would host (they take `RPCAsyncSequence` and `RPCWriter`);
/// only the transport underneath is ours.
enum GRPCMethod: Sendable {
    /// One request message, one response message.
    case unary(@Sendable (_ request: [UInt8], _ context: ServerContext, _ caller: CallerCredentials) async throws -> [UInt8])
    /// Request messages as they arrive; responses written through the sink.
    case streaming(
        @Sendable (_ requests: AsyncThrowingStream<[UInt8], any Error>, _ sink: GRPCResponseSink, _ context: ServerContext)
            async throws -> Void)

    /// One request message, answered through `reply` whenever the answer is ready: the
    /// body runs on the connection's event loop and must not block. No task per call.
    case direct(@Sendable (_ request: [UInt8], _ reply: GRPCReply) -> Void)

    var isStreaming: Bool {
        if case .streaming = self { true } else { false }
    }

    static func direct<Request: SwiftProtobuf.Message>(_ body: @escaping @Sendable (Request, GRPCReply) -> Void) -> GRPCMethod {
        direct { (request: Request, _, reply) in body(request, reply) }
    }

    /// `direct` for a method that also wants the request's bytes as they came (a write
    /// goes to the log as sent, without encoding it again).
    static func direct<Request: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (Request, [UInt8], GRPCReply) -> Void
    ) -> GRPCMethod {
        .direct { bytes, reply in
            do {
                body(try decode(bytes), bytes, reply)
            } catch {
                reply.fail(GRPCConnectionHandler.rpcError(error))
            }
        }
    }

    static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) -> GRPCMethod {
        .unary { bytes, context, _ in
            try await body(try decode(bytes), context).serializedBytes()
        }
    }

    /// `unary` for a method that may only run when `permit` gives no error for the caller.
    static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (Request, ServerContext) async throws -> Response,
        permit: @escaping @Sendable (Request, CallerCredentials) async -> RPCError?
    ) -> GRPCMethod {
        .unary { bytes, context, caller in
            try await body(try await permitted(bytes, caller, permit), context).serializedBytes()
        }
    }

    /// `unary` with `permit`, for a method that acts in the caller's name elsewhere (a
    /// membership change passed on to the leader carries the caller's token).
    static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (Request, CallerCredentials) async throws -> Response,
        permit: @escaping @Sendable (Request, CallerCredentials) async -> RPCError?
    ) -> GRPCMethod {
        .unary { bytes, _, caller in
            try await body(try await permitted(bytes, caller, permit), caller).serializedBytes()
        }
    }

    /// The request, once `permit` lets the caller make it.
    private static func permitted<Request: SwiftProtobuf.Message>(
        _ bytes: [UInt8], _ caller: CallerCredentials, _ permit: @Sendable (Request, CallerCredentials) async -> RPCError?
    ) async throws -> Request {
        let request: Request = try decode(bytes)
        if let denial = await permit(request, caller) { throw denial }
        return request
    }

    /// `streaming` for a method that checks its caller itself.
    static func streaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (RPCAsyncSequence<Request, any Error>, RPCWriter<Response>, ServerContext, CallerCredentials)
            async throws -> Void
    ) -> GRPCMethod {
        .streaming { requests, sink, context in
            let decoded = requests.map { bytes throws -> Request in try decode(bytes) }
            try await body(
                RPCAsyncSequence(wrapping: decoded), RPCWriter(wrapping: MessageWriter<Response>(sink: sink)), context, sink.caller)
        }
    }

    /// `unary` for a method that checks who calls.
    static func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (Request, CallerCredentials) async throws -> Response
    ) -> GRPCMethod {
        .unary { bytes, _, caller in
            try await body(try decode(bytes), caller).serializedBytes()
        }
    }

    static func streaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ body: @escaping @Sendable (RPCAsyncSequence<Request, any Error>, RPCWriter<Response>, ServerContext) async throws -> Void
    ) -> GRPCMethod {
        .streaming { requests, sink, context in
            let decoded = requests.map { bytes throws -> Request in try decode(bytes) }
            try await body(RPCAsyncSequence(wrapping: decoded), RPCWriter(wrapping: MessageWriter<Response>(sink: sink)), context)
        }
    }

    /// A request whose bytes are not the message: grpc's status for it.
    static func decode<Request: SwiftProtobuf.Message>(_ bytes: [UInt8]) throws -> Request {
        do {
            return try Request(serializedBytes: bytes)
        } catch {
            throw RPCError(code: .invalidArgument, message: "Can't deserialize to message of type \(Request.protoMessageName)")
        }
    }
}

/// How a `direct` method answers its call.
struct GRPCReply: Sendable {
    let sink: GRPCResponseSink

    func respond(_ response: some SwiftProtobuf.Message) {
        do {
            sink.respond(try response.serializedBytes())
        } catch {
            fail(RPCError(code: .internalError, message: "cannot encode the response: \(error)"))
        }
    }

    func fail(_ error: RPCError) { sink.finish(error) }
}

/// Serializes messages into a stream's response sink.
struct MessageWriter<Response: SwiftProtobuf.Message>: RPCWriterProtocol {
    let sink: GRPCResponseSink

    func write(_ element: Response) async throws {
        try await sink.send(try element.serializedBytes())
    }

    func write(contentsOf elements: some Sequence<Response>) async throws {
        for element in elements { try await write(element) }
    }
}

/// Methods by HTTP/2 `:path` (`/package.Service/Method`).
struct GRPCRouter: Sendable {
    let methods: [String: (descriptor: MethodDescriptor, method: GRPCMethod)]
    /// Whether this member is a learner now: a learner serves only Status and serializable
    /// ranges (checked by the KV service), as etcd's learners.
    /// Calls started and completed, for `/metrics`.
    let metrics = GRPCMetrics()
    let isLearner: @Sendable () -> Bool

    static let learnerPaths: Set<String> = ["/etcdserverpb.KV/Range", "/etcdserverpb.Maintenance/Status"]
    static let notForLearner = RPCError(code: .unavailable, message: "etcdserver: rpc not supported for learner")

    func refusesForLearner(_ path: String) -> Bool { !Self.learnerPaths.contains(path) && isLearner() }

    init(methods: [String: (descriptor: MethodDescriptor, method: GRPCMethod)], isLearner: @escaping @Sendable () -> Bool = { false }) {
        self.methods = methods
        self.isLearner = isLearner
    }

    init(
        kv: KVService, watch: WatchService, lease: LeaseService, cluster: ClusterService, maintenance: MaintenanceService,
        auth: AuthService, lockElection: LockElectionService? = nil, isLearner: @escaping @Sendable () -> Bool = { false }
    ) {
        self.isLearner = isLearner
        var table: [String: (MethodDescriptor, GRPCMethod)] = [:]
        func add(_ service: String, _ name: String, _ method: GRPCMethod) {
            table["/etcdserverpb.\(service)/\(name)"] = (
                MethodDescriptor(fullyQualifiedService: "etcdserverpb.\(service)", method: name), method
            )
        }
        add("KV", "Range", .direct(kv.range))
        add("KV", "Put", .direct(kv.put))
        add("KV", "DeleteRange", .direct(kv.deleteRange))
        add("KV", "Txn", .direct(kv.txn))
        add("KV", "Compact", .unary(kv.compact))
        add("Watch", "Watch", .streaming(watch.watch(request:response:context:caller:)))
        add("Lease", "LeaseGrant", .unary(lease.leaseGrant))
        add(
            "Lease", "LeaseRevoke",
            .unary(lease.leaseRevoke) { request, caller in await lease.node.permitLeaseRevoke(caller, id: request.id) })
        add("Lease", "LeaseKeepAlive", .streaming(lease.leaseKeepAlive))
        add("Lease", "LeaseTimeToLive", .unary(lease.leaseTimeToLive))
        add("Lease", "LeaseLeases", .unary(lease.leaseLeases))
        add("Cluster", "MemberAdd", .unary(cluster.memberAdd(request:caller:)) { _, caller in cluster.node.permitAdmin(caller) })
        add("Cluster", "MemberRemove", .unary(cluster.memberRemove(request:caller:)) { _, caller in cluster.node.permitAdmin(caller) })
        add("Cluster", "MemberUpdate", .unary(cluster.memberUpdate(request:caller:)) { _, caller in cluster.node.permitAdmin(caller) })
        add("Cluster", "MemberList", .unary(cluster.memberList))
        add("Cluster", "MemberPromote", .unary(cluster.memberPromote(request:caller:)) { _, caller in cluster.node.permitAdmin(caller) })
        add("Maintenance", "Alarm", .unary(maintenance.alarm))
        add("Maintenance", "Status", .unary(maintenance.status))
        add("Maintenance", "Defragment", .unary(maintenance.defragment) { _, caller in maintenance.node.permitAdmin(caller) })
        add("Maintenance", "Hash", .unary(maintenance.hash) { _, caller in maintenance.node.permitAdmin(caller) })
        add("Maintenance", "HashKV", .unary(maintenance.hashKV) { _, caller in maintenance.node.permitAdmin(caller) })
        add(
            "Maintenance", "Snapshot",
            .streaming { (requests: RPCAsyncSequence<Etcdserverpb_SnapshotRequest, any Error>, response, context, caller) in
                if let denial = maintenance.node.permitAdmin(caller) { throw denial }
                var request = Etcdserverpb_SnapshotRequest()
                for try await message in requests {
                    request = message
                    break
                }
                try await maintenance.snapshot(request: request, response: response, context: context)
            })
        add("Maintenance", "MoveLeader", .unary(maintenance.moveLeader))
        add("Auth", "AuthEnable", .unary(auth.authEnable))
        add("Auth", "AuthDisable", .unary(auth.authDisable))
        add("Auth", "Authenticate", .unary(auth.authenticate))
        add("Auth", "UserAdd", .unary(auth.userAdd))
        add("Auth", "UserGet", .unary(auth.userGet))
        add("Auth", "UserList", .unary(auth.userList))
        add("Auth", "UserDelete", .unary(auth.userDelete))
        add("Auth", "UserChangePassword", .unary(auth.userChangePassword))
        add("Auth", "UserGrantRole", .unary(auth.userGrantRole))
        add("Auth", "UserRevokeRole", .unary(auth.userRevokeRole))
        add("Auth", "RoleAdd", .unary(auth.roleAdd))
        add("Auth", "RoleGet", .unary(auth.roleGet))
        add("Auth", "RoleList", .unary(auth.roleList))
        add("Auth", "RoleDelete", .unary(auth.roleDelete))
        add("Auth", "RoleGrantPermission", .unary(auth.roleGrantPermission))
        add("Auth", "RoleRevokePermission", .unary(auth.roleRevokePermission))
        if let service = lockElection {
            func add(_ package: String, _ name: String, _ method: GRPCMethod) {
                let (package, serviceName) = package == "lock" ? ("v3lockpb", "Lock") : ("v3electionpb", "Election")
                table["/\(package).\(serviceName)/\(name)"] = (
                    MethodDescriptor(fullyQualifiedService: "\(package).\(serviceName)", method: name), method
                )
            }
            add("lock", "Lock", .unary(service.lock))
            add("lock", "Unlock", .unary(service.unlock))
            add("election", "Campaign", .unary(service.campaign))
            add("election", "Proclaim", .unary(service.proclaim))
            add("election", "Leader", .unary(service.leader))
            add("election", "Observe", .streaming(service.observe))
            add("election", "Resign", .unary(service.resign))
        }
        methods = table
    }
}
