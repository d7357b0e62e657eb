import BoltDB
import CLI
import EtcdAPI
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// etcdctl's `--write-out` formats: simple, json, fields, table, protobuf.
struct EtcdctlPrinter: Sendable {
    enum Format: String, Sendable { case simple, json, fields, table, protobuf }

    let format: Format
    let hex: Bool
    let io: StandardStreams
    var valueOnly = false

    init?(format name: String, hex: Bool, io: StandardStreams) {
        guard let format = Format(rawValue: name) else { return nil }
        self.format = format
        self.hex = hex
        self.io = io
    }

    private var out: any TextSink { io.output }

    /// json and protobuf print the response message itself; returns true when done.
    private func printMessage(_ message: some SwiftProtobuf.Message) -> Bool {
        switch format {
        case .json:
            out.line(GoJSON.encode(message))
            return true
        case .protobuf:
            out.write(bytes: (try? message.serializedBytes()) ?? [])
            return true
        default:
            return false
        }
    }

    // MARK: KV

    func kv(_ kv: Mvccpb_KeyValue) {
        if !valueOnly { out.write(bytes: rendered(kv.key) + [0x0A]) }
        out.write(bytes: rendered(kv.value) + [0x0A])
    }

    /// Raw bytes, or with --hex `\x66\x6f\x6f`.
    private func rendered(_ data: Data) -> [UInt8] {
        guard hex else { return [UInt8](data) }
        return Array(data.map { "\\x" + ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined().utf8)
    }

    private func fieldsKV(_ prefix: String, _ kv: Mvccpb_KeyValue) {
        out.line("\"\(prefix)Key\" : \(EtcdctlHelp.goQuote(bytes: [UInt8](kv.key)))")
        out.line("\"\(prefix)CreateRevision\" : \(kv.createRevision)")
        out.line("\"\(prefix)ModRevision\" : \(kv.modRevision)")
        out.line("\"\(prefix)Version\" : \(kv.version)")
        out.line("\"\(prefix)Value\" : \(EtcdctlHelp.goQuote(bytes: [UInt8](kv.value)))")
        out.line("\"\(prefix)Lease\" : \(kv.lease)")
    }

    private func header(_ header: Etcdserverpb_ResponseHeader) {
        out.line("\"ClusterID\" : \(header.clusterID)")
        out.line("\"MemberID\" : \(header.memberID)")
        out.line("\"Revision\" : \(header.revision)")
        out.line("\"RaftTerm\" : \(header.raftTerm)")
    }

    func get(_ response: Etcdserverpb_RangeResponse) {
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            for item in response.kvs { fieldsKV("", item) }
            out.line("\"More\" : \(response.more)")
            out.line("\"Count\" : \(response.count)")
            return
        }
        for item in response.kvs { kv(item) }
    }

    func put(_ response: Etcdserverpb_PutResponse) {
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            if response.hasPrevKv { fieldsKV("Prev", response.prevKv) }
            return
        }
        out.line("OK")
        if response.hasPrevKv { kv(response.prevKv) }
    }

    func delete(_ response: Etcdserverpb_DeleteRangeResponse) {
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            out.line("\"Deleted\" : \(response.deleted)")
            for item in response.prevKvs { fieldsKV("Prev", item) }
            return
        }
        out.line("\(response.deleted)")
        for item in response.prevKvs { kv(item) }
    }

    func txn(_ response: Etcdserverpb_TxnResponse) {
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            out.line("\"Succeeded\" : \(response.succeeded)")
        } else {
            out.line(response.succeeded ? "SUCCESS" : "FAILURE")
        }
        for operation in response.responses {
            if format != .fields { out.line("") }
            switch operation.response {
            case .responseRange(let range): get(range)
            case .responsePut(let put): self.put(put)
            case .responseDeleteRange(let delete): self.delete(delete)
            case .responseTxn, .none: out.line("unexpected response \(operation)")
            }
        }
    }

    func watch(_ response: Etcdserverpb_WatchResponse) {
        if printMessage(response) { return }
        if format == .fields { header(response.header) }
        for event in response.events {
            let type = event.type == .delete ? "DELETE" : "PUT"
            if format == .fields {
                out.line("\"Type\" : \(type)")
                if event.hasPrevKv { fieldsKV("Prev", event.prevKv) }
                fieldsKV("", event.kv)
            } else {
                out.line(type)
                if event.hasPrevKv { kv(event.prevKv) }
                kv(event.kv)
            }
        }
    }

    // MARK: Lease

    static func leaseHex(_ id: Int64) -> String {
        let digits = String(UInt64(bitPattern: id), radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// clientv3's lease responses embed `*ResponseHeader`, so Go's JSON flattens the
    /// header fields into the object; their own fields mostly have no `omitempty`.
    private func flatJSON(_ header: Etcdserverpb_ResponseHeader, _ fields: [String]) {
        var members: [String] = []
        if header.clusterID != 0 { members.append("\"cluster_id\":\(header.clusterID)") }
        if header.memberID != 0 { members.append("\"member_id\":\(header.memberID)") }
        if header.revision != 0 { members.append("\"revision\":\(header.revision)") }
        if header.raftTerm != 0 { members.append("\"raft_term\":\(header.raftTerm)") }
        out.line("{" + (members + fields).joined(separator: ",") + "}")
    }

    func grant(_ response: Etcdserverpb_LeaseGrantResponse) {
        if format == .json {
            flatJSON(response.header, ["\"ID\":\(response.id)", "\"TTL\":\(response.ttl)", "\"Error\":\(GoJSON.quote(response.error))"])
            return
        }
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            out.line("\"ID\" : \(response.id)")
            out.line("\"TTL\" : \(response.ttl)")
            return
        }
        out.line("lease \(Self.leaseHex(response.id)) granted with TTL(\(response.ttl)s)")
    }

    func revoke(_ id: Int64, _ response: Etcdserverpb_LeaseRevokeResponse) {
        sentence(response, header: response.header, "lease \(Self.leaseHex(id)) revoked")
    }

    func keepAlive(_ response: Etcdserverpb_LeaseKeepAliveResponse) {
        if format == .json {
            flatJSON(response.header, ["\"ID\":\(response.id)", "\"TTL\":\(response.ttl)"])
            return
        }
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            out.line("\"ID\" : \(response.id)")
            out.line("\"TTL\" : \(response.ttl)")
            return
        }
        out.line("lease \(Self.leaseHex(response.id)) keepalived with TTL(\(response.ttl))")
    }

    func timeToLive(_ response: Etcdserverpb_LeaseTimeToLiveResponse, keys: Bool) {
        if format == .json {
            let keyList =
                response.keys.isEmpty ? "null" : "[" + response.keys.map { "\"\($0.base64EncodedString())\"" }.joined(separator: ",") + "]"
            flatJSON(
                response.header,
                [
                    "\"id\":\(response.id)", "\"ttl\":\(response.ttl)", "\"granted-ttl\":\(response.grantedTtl)",
                    "\"keys\":\(keyList)",
                ])
            return
        }
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            out.line("\"ID\" : \(response.id)")
            out.line("\"TTL\" : \(response.ttl)")
            out.line("\"GrantedTTL\" : \(response.grantedTtl)")
            for key in response.keys { out.line("\"Key\" : \(EtcdctlHelp.goQuote(bytes: [UInt8](key)))") }
            return
        }
        if response.grantedTtl == 0 && response.ttl == -1 {
            out.line("lease \(Self.leaseHex(response.id)) already expired")
            return
        }
        var text = "lease \(Self.leaseHex(response.id)) granted with TTL(\(response.grantedTtl)s), remaining(\(response.ttl)s)"
        if keys {
            let names = response.keys.map { String(decoding: $0, as: UTF8.self) }
            text += ", attached keys([\(names.joined(separator: " "))])"
        }
        out.line(text)
    }

    func leases(_ response: Etcdserverpb_LeaseLeasesResponse) {
        if format == .json {
            let items = response.leases.map { "{\"id\":\($0.id)}" }.joined(separator: ",")
            flatJSON(response.header, ["\"leases\":[\(items)]"])
            return
        }
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            for lease in response.leases { out.line("\"ID\" : \(lease.id)") }
            return
        }
        out.line("found \(response.leases.count) leases")
        for lease in response.leases { out.line(Self.leaseHex(lease.id)) }
    }

    // MARK: Cluster

    static func memberRows(_ members: [Etcdserverpb_Member]) -> [[String]] {
        members.map { member in
            [
                String(member.id, radix: 16), member.name.isEmpty ? "unstarted" : "started", member.name,
                member.peerUrls.joined(separator: ","), member.clientUrls.joined(separator: ","),
                member.isLearner ? "true" : "false",
            ]
        }
    }

    func memberList(_ response: Etcdserverpb_MemberListResponse) {
        if printMessage(response) { return }
        switch format {
        case .fields:
            header(response.header)
            for member in response.members {
                out.line("\"ID\" : \(member.id)")
                out.line("\"Name\" : \(EtcdctlHelp.goQuote(member.name))")
                for url in member.peerUrls { out.line("\"PeerURL\" : \(EtcdctlHelp.goQuote(url))") }
                for url in member.clientUrls { out.line("\"ClientURL\" : \(EtcdctlHelp.goQuote(url))") }
                out.line("\"IsLearner\" : \(member.isLearner)")
                out.line("")
            }
        case .table:
            out.write(
                Table.render(
                    header: ["ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"],
                    rows: Self.memberRows(response.members)))
        default:
            for row in Self.memberRows(response.members) { out.line(row.joined(separator: ", ")) }
        }
    }

    /// Responses that print one sentence in simple format, the header in fields format
    /// and themselves in json/protobuf.
    private func sentence(_ message: some SwiftProtobuf.Message, header responseHeader: Etcdserverpb_ResponseHeader, _ text: String) {
        if printMessage(message) { return }
        if format == .fields {
            header(responseHeader)
            return
        }
        out.line(text)
    }

    func memberAdd(_ response: Etcdserverpb_MemberAddResponse) {
        sentence(
            response, header: response.header,
            "Member \(Self.paddedHex(response.member.id)) added to cluster \(Self.paddedHex(response.header.clusterID))")
    }

    func memberRemove(_ id: UInt64, _ response: Etcdserverpb_MemberRemoveResponse) {
        sentence(
            response, header: response.header,
            "Member \(Self.paddedHex(id)) removed from cluster \(Self.paddedHex(response.header.clusterID))")
    }

    func memberUpdate(_ id: UInt64, _ response: Etcdserverpb_MemberUpdateResponse) {
        sentence(
            response, header: response.header,
            "Member \(Self.paddedHex(id)) updated in cluster \(Self.paddedHex(response.header.clusterID))")
    }

    func memberPromote(_ id: UInt64, _ response: Etcdserverpb_MemberPromoteResponse) {
        sentence(
            response, header: response.header,
            "Member \(Self.paddedHex(id)) promoted in cluster \(Self.paddedHex(response.header.clusterID))")
    }

    /// Go's `%16x`: hex right-aligned in 16 columns with spaces.
    static func paddedHex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: " ", count: max(0, 16 - digits.count)) + digits
    }

    // MARK: Maintenance

    struct EndpointStatus: Sendable {
        var endpoint: String
        var response: Etcdserverpb_StatusResponse
    }

    static func statusRows(_ statuses: [EndpointStatus]) -> [[String]] {
        statuses.map { status in
            let response = status.response
            return [
                status.endpoint, String(response.header.memberID, radix: 16), response.version,
                humanBytes(UInt64(max(response.dbSize, 0))), "\(response.leader == response.header.memberID)",
                "\(response.isLearner)", "\(response.raftTerm)", "\(response.raftIndex)", "\(response.raftAppliedIndex)",
                response.errors.joined(separator: ", "),
            ]
        }
    }

    func endpointStatus(_ statuses: [EndpointStatus]) {
        switch format {
        case .json:
            let items = statuses.map { "{\"Endpoint\":\(GoJSON.quote($0.endpoint)),\"Status\":\(GoJSON.encode($0.response))}" }
            out.line("[" + items.joined(separator: ",") + "]")
        case .fields:
            for status in statuses {
                let response = status.response
                header(response.header)
                out.line("\"Version\" : \(EtcdctlHelp.goQuote(response.version))")
                out.line("\"DBSize\" : \(response.dbSize)")
                out.line("\"Leader\" : \(response.leader)")
                out.line("\"IsLearner\" : \(response.isLearner)")
                out.line("\"RaftIndex\" : \(response.raftIndex)")
                out.line("\"RaftTerm\" : \(response.raftTerm)")
                out.line("\"RaftAppliedIndex\" : \(response.raftAppliedIndex)")
                out.line("\"Errors\" : [\(response.errors.joined(separator: " "))]")
                out.line("\"Endpoint\" : \(EtcdctlHelp.goQuote(status.endpoint))")
                out.line("")
            }
        case .table:
            out.write(
                Table.render(
                    header: [
                        "endpoint", "ID", "version", "db size", "is leader", "is learner", "raft term", "raft index",
                        "raft applied index", "errors",
                    ], rows: Self.statusRows(statuses)))
        default:
            for row in Self.statusRows(statuses) { out.line(row.joined(separator: ", ")) }
        }
    }

    struct EndpointHash: Sendable {
        var endpoint: String
        var response: Etcdserverpb_HashKVResponse
    }

    func endpointHashKV(_ hashes: [EndpointHash]) {
        let rows = hashes.map { [$0.endpoint, "\($0.response.hash)"] }
        switch format {
        case .json:
            let items = hashes.map { "{\"Endpoint\":\(GoJSON.quote($0.endpoint)),\"HashKV\":\(GoJSON.encode($0.response))}" }
            out.line("[" + items.joined(separator: ",") + "]")
        case .fields:
            for hash in hashes {
                header(hash.response.header)
                out.line("\"Endpoint\" : \(EtcdctlHelp.goQuote(hash.endpoint))")
                out.line("\"Hash\" : \(hash.response.hash)")
                out.line("")
            }
        case .table:
            out.write(Table.render(header: ["endpoint", "hash"], rows: rows))
        default:
            for row in rows { out.line(row.joined(separator: ", ")) }
        }
    }

    func snapshotStatus(_ status: EtcdBackendStatus) {
        let row = [
            String(status.hash, radix: 16), "\(status.revision)", "\(status.totalKeys)",
            Self.humanBytes(UInt64(status.totalSize)),
        ]
        switch format {
        case .json:
            out.line(
                "{\"hash\":\(status.hash),\"revision\":\(status.revision),\"totalKey\":\(status.totalKeys),\"totalSize\":\(status.totalSize)}")
        case .fields:
            out.line("\"Hash\" : \(status.hash)")
            out.line("\"Revision\" : \(status.revision)")
            out.line("\"Keys\" : \(status.totalKeys)")
            out.line("\"Size\" : \(status.totalSize)")
        case .table:
            out.write(Table.render(header: ["hash", "revision", "total keys", "total size"], rows: [row]))
        default:
            out.line(row.joined(separator: ", "))
        }
    }

    func alarms(_ response: Etcdserverpb_AlarmResponse) {
        if printMessage(response) { return }
        if format == .fields {
            header(response.header)
            for alarm in response.alarms {
                out.line("\"MemberID\" : \(alarm.memberID)")
                out.line("\"AlarmType\" : \(Self.alarmName(alarm.alarm))")
                out.line("")
            }
            return
        }
        for alarm in response.alarms { out.line("memberID:\(alarm.memberID) alarm:\(Self.alarmName(alarm.alarm)) ") }
    }

    static func alarmName(_ alarm: Etcdserverpb_AlarmType) -> String {
        switch alarm {
        case .none: return "NONE"
        case .nospace: return "NOSPACE"
        case .corrupt: return "CORRUPT"
        case .UNRECOGNIZED(let value): return "\(value)"
        }
    }

    /// go-humanize's Bytes: SI units, one decimal below 10 (`25 kB`, `1.5 MB`, `9 B`).
    static func humanBytes(_ size: UInt64) -> String {
        if size < 10 { return "\(size) B" }
        let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
        var exponent = 0
        var scale: Double = 1
        while exponent < units.count - 1 && Double(size) >= scale * 1000 {
            exponent += 1
            scale *= 1000
        }
        let value = (Double(size) / scale * 10 + 0.5).rounded(.down) / 10
        // Go formats with %.1f below 10 and %.0f above (round half to even).
        let number = value < 10 ? formatOneDecimal(value) : "\(Int(value.rounded(.toNearestOrEven)))"
        return "\(number) \(units[exponent])"
    }

    private static func formatOneDecimal(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// olekukonko/tablewriter as etcdctl configures it: centred upper-case headers, cells
/// right-aligned, one space of padding, `+`/`-`/`|` borders.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let titles = header.map { $0.uppercased() }
        var widths = titles.map { $0.count }
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        let border = "+" + widths.map { String(repeating: "-", count: $0 + 2) + "+" }.joined() + "\n"
        var text = border
        text += "|" + zip(titles, widths).map { title, width in
            let gap = width - title.count
            return " " + String(repeating: " ", count: gap / 2) + title + String(repeating: " ", count: gap - gap / 2) + " |"
        }.joined() + "\n"
        text += border
        for row in rows {
            text += "|" + zip(row, widths).map { cell, width in
                " " + String(repeating: " ", count: width - cell.count) + cell + " |"
            }.joined() + "\n"
        }
        text += border
        return text
    }
}
