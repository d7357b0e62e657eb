public import EtcdClient
import Fleet
public import FleetRegistry
import Foundation
public import HTTPServer
import NIOHTTP1
import UnitFile

/// fleet's HTTP API v1 (`/fleet/v1/units`, `/state`, `/machines`, `/discovery`) over the
/// registry, with fleet's JSON shapes, status codes and paging; `/metrics`; and two
/// routes of ours under `/coreos/v1/` that let fleetctl read a unit's status and output
/// from the machine that runs it.
public struct FleetAPI: HTTPResponder {
    let registry: FleetRegistry
    let agent: FleetAgent?
    let manager: (any UnitManager)?
    let engine: EngineLoop?
    let machineID: String
    /// The CA and client certificate for forwarding to another machine's `https://` API.
    let forwardingTLS: EtcdTLSConfiguration?

    public init(
        registry: FleetRegistry, agent: FleetAgent?, manager: (any UnitManager)?, engine: EngineLoop?, machineID: String,
        forwardingTLS: EtcdTLSConfiguration? = nil
    ) {
        self.forwardingTLS = forwardingTLS
        self.registry = registry
        self.agent = agent
        self.manager = manager
        self.engine = engine
        self.machineID = machineID
    }

    public func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = String(request.path)
        do {
            switch path {
            case "/metrics": return await metrics()
            case "/fleet/v1/units":
                guard request.method == .GET else { return error(405, "only GET supported against this resource") }
                return try await listUnits(request)
            case "/fleet/v1/state":
                guard request.method == .GET else { return error(405, "only GET supported against this resource") }
                return try await listStates(request)
            case "/fleet/v1/machines":
                switch request.method {
                case .GET: return try await listMachines(request)
                case .PATCH: return try await patchMachines(request)
                default: return error(405, "only GET and PATCH supported against this resource")
                }
            case "/fleet/v1/discovery", "/fleet/v1/discovery.json":
                guard request.method == .GET else { return error(405, "only GET supported against this resource") }
                return HTTPResponse(.ok, contentType: "application/json", body: FleetDiscovery.document)
            case "/":
                return error(405, "")
            default:
                if path.hasPrefix("/fleet/v1/units/") {
                    let name = String(path.dropFirst("/fleet/v1/units/".count))
                    switch request.method {
                    case .GET: return try await getUnit(name)
                    case .PUT: return try await putUnit(name, request)
                    case .DELETE: return try await deleteUnit(name)
                    default: return error(405, "only GET, PUT and DELETE supported against this resource")
                    }
                }
                if path.hasPrefix("/coreos/v1/units/") { return await local(path, request) }
                return error(404, "")
            }
        } catch {
            FleetLog.warning("api: \(request.method) \(request.uri): \(error)")
            return self.error(500, "")
        }
    }

    // MARK: Units

    private func listUnits(_ request: HTTPRequest) async throws -> HTTPResponse {
        let token: FleetSchema.PageToken
        do {
            token = try pageToken(request)
        } catch {
            return self.error(400, error.description)
        }
        let (page, next) = token.slice(try await registry.schemaUnits())
        return json(200, FleetSchema.UnitPage(units: page, nextPageToken: next))
    }

    private func getUnit(_ name: String) async throws -> HTTPResponse {
        guard let unit = try await registry.schemaUnit(name) else { return error(404, "unit does not exist") }
        return json(200, unit)
    }

    private func putUnit(_ name: String, _ request: HTTPRequest) async throws -> HTTPResponse {
        let types = request.headers["Content-Type"]
        guard types.count == 1 else { return error(415, "expected 1 Content-Type, got \(types.count)") }
        guard types[0].split(separator: ";")[0].trimmingCharacters(in: .whitespaces) == "application/json" else {
            return error(415, "only acceptable Content-Type is application/json")
        }
        var unit: FleetSchema.Unit
        do {
            unit = try JSONDecoder().decode(FleetSchema.Unit.self, from: Data(request.body))
        } catch {
            return self.error(400, "unable to decode body: \(error)")
        }
        if unit.name.isEmpty { unit.name = name }
        guard unit.name == name else { return error(400, "name in URL \"\(name)\" differs from unit name in request body \"\(unit.name)\"") }
        if let problem = Self.validate(name: name) { return error(400, problem) }
        do {
            switch try await registry.set(unit) {
            case .created: return HTTPResponse(.created, contentType: "application/json", body: "")
            case .updated: return HTTPResponse(.noContent, contentType: "application/json", body: "")
            }
        } catch let refusal as FleetRegistry.Refusal {
            return error(refusal.status, refusal.message)
        }
    }

    private func deleteUnit(_ name: String) async throws -> HTTPResponse {
        do {
            try await registry.destroy(name)
        } catch FleetRegistry.Failure.unitNotFound {
            return error(404, "unit does not exist")
        }
        return HTTPResponse(.noContent, contentType: "application/json", body: "")
    }

    /// systemd's unit-name rules as fleet checks them.
    static func validate(name: String) -> String? {
        if name.isEmpty { return "unit name cannot be empty" }
        if name.utf8.count > 256 { return "unit name exceeds maximum length (256)" }
        guard let dot = name.lastIndex(of: ".") else { return "unit name must contain \".\"" }
        if name.index(after: dot) == name.endIndex { return "unit name cannot end in \".\"" }
        let type = name[name.index(after: dot)...]
        let types: Set<Substring> = ["service", "socket", "busname", "target", "snapshot", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"]
        guard types.contains(type) else { return "invalid unit type: \"\(type)\"" }
        for character in name[..<dot] where !(character.isASCII && (character.isLetter || character.isNumber || ":-_.\\@".contains(character))) {
            return "invalid character '\(character)' in unit name"
        }
        if name.hasPrefix("@") { return "unit name cannot start in \"@\"" }
        return nil
    }

    // MARK: States and machines

    private func listStates(_ request: HTTPRequest) async throws -> HTTPResponse {
        let token: FleetSchema.PageToken
        do {
            token = try pageToken(request)
        } catch {
            return self.error(400, error.description)
        }
        let query = Self.query(request.uri)
        var states = try await registry.schemaStates()
        if let machine = query["machineID"] { states = states.filter { $0.machineID == machine } }
        if let unit = query["unitName"] { states = states.filter { $0.name == unit } }
        let (page, next) = token.slice(states)
        return json(200, FleetSchema.UnitStatePage(states: page, nextPageToken: next))
    }

    private func listMachines(_ request: HTTPRequest) async throws -> HTTPResponse {
        let token: FleetSchema.PageToken
        do {
            token = try pageToken(request)
        } catch {
            return self.error(400, error.description)
        }
        let (page, next) = token.slice(try await registry.schemaMachines())
        return json(200, FleetSchema.MachinePage(machines: page, nextPageToken: next))
    }

    /// JSON-Patch on `/<machineID>/metadata/<key>`: `add`, `replace`, `remove`.
    private func patchMachines(_ request: HTTPRequest) async throws -> HTTPResponse {
        let operations: [FleetSchema.PatchOperation]
        do {
            operations = try JSONDecoder().decode([FleetSchema.PatchOperation].self, from: Data(request.body))
        } catch {
            return self.error(400, "unable to decode body: \(error)")
        }
        var changes: [(machine: String, key: String, value: String?)] = []
        for operation in operations {
            let parts = operation.path.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0].isEmpty, !parts[1].isEmpty, parts[2] == "metadata", !parts[3].isEmpty else {
                return error(400, "invalid path \(operation.path): want /<machineID>/metadata/<key>")
            }
            switch operation.op {
            case "add", "replace":
                guard let value = operation.value else { return error(400, "\(operation.op) of \(operation.path) needs a value") }
                changes.append((String(parts[1]), String(parts[3]), value))
            case "remove":
                changes.append((String(parts[1]), String(parts[3]), nil))
            default:
                return error(400, "invalid op \(operation.op): want add, replace or remove")
            }
        }
        try await registry.patchMetadata(changes)
        return HTTPResponse(.noContent, contentType: "application/json", body: "")
    }

    // MARK: Ours

    /// `/coreos/v1/units/<name>/status` and `/coreos/v1/units/<name>/journal?lines=N&follow=true`,
    /// answered by the machine that runs the unit.
    private func local(_ path: String, _ request: HTTPRequest) async -> HTTPResponse {
        let rest = path.dropFirst("/coreos/v1/units/".count)
        guard let slash = rest.lastIndex(of: "/"), let manager else { return error(404, "") }
        let name = String(rest[..<slash])
        let query = Self.query(request.uri)
        let lines = Int(query["lines"] ?? "") ?? 10
        let wantedMachine = query["machine"]
        if await manager.status(name) == nil || (wantedMachine != nil && wantedMachine != machineID) {
            return await forward(name, request, machine: wantedMachine)
        }
        switch rest[rest.index(after: slash)...] {
        case "status":
            guard let status = await manager.status(name) else { return error(404, "unit \(name) is not loaded on machine \(machineID)") }
            var text = "● \(name)\n"
            text += "   Loaded: \(status.load) (\(name); fleet, machine \(machineID))\n"
            text += "   Active: \(status.active) (\(status.sub))\n"
            if let pid = status.mainPID { text += " Main PID: \(pid)\n" }
            let journal = await manager.journal(name, lines: lines)
            if !journal.isEmpty { text += "\n" + journal.joined(separator: "\n") + "\n" }
            return HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: text)
        case "journal":
            let recent = await manager.journal(name, lines: lines)
            let follow = query["follow"] == "true" || query["follow"] == "1"
            if follow, manager.journalPath(name) == nil, let arguments = manager.journalFollowArguments(name) {
                return Self.followProcess(arguments, first: recent)
            }
            guard follow, let file = manager.journalPath(name) else {
                return HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: recent.map { $0 + "\n" }.joined())
            }
            var response = HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: "")
            response.stream = HTTPBodyStream { writer in
                do {
                    try await writer.write(Array(recent.map { $0 + "\n" }.joined().utf8))
                    guard let handle = FileHandle(forReadingAtPath: file) else { return }
                    defer { try? handle.close() }
                    _ = try? handle.seekToEnd()
                    while !Task.isCancelled {
                        let data = handle.availableData
                        if data.isEmpty {
                            try await Task.sleep(for: .milliseconds(200))
                        } else {
                            try await writer.write([UInt8](data))
                        }
                    }
                } catch {}
            }
            return response
        default:
            return error(404, "")
        }
    }

    /// Streams what our own binary prints with `arguments` (`journal -u NAME -f`) until the
    /// client goes away.
    static func followProcess(_ arguments: [String], first: [String]) -> HTTPResponse {
        var response = HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: "")
        response.stream = HTTPBodyStream { writer in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return }
            let (chunks, sink) = AsyncStream<Data>.makeStream()
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    sink.finish()
                } else {
                    sink.yield(data)
                }
            }
            await withTaskCancellationHandler {
                do {
                    try await writer.write(Array(first.map { $0 + "\n" }.joined().utf8))
                    for await chunk in chunks { try await writer.write([UInt8](chunk)) }
                } catch {}
            } onCancel: {
                process.terminate()
            }
            if process.isRunning { process.terminate() }
        }
        return response
    }

    /// Asks the fleetd of the machine that runs `name` (its endpoint is in its machine
    /// record) and relays the answer, streaming for `follow`.
    private func forward(_ name: String, _ request: HTTPRequest, machine wanted: String?) async -> HTTPResponse {
        do {
            var machine = wanted
            if machine == nil { machine = try await registry.placement(of: name) }
            guard let machine else { return error(404, "unit \(name) is not scheduled on any machine") }
            guard machine != machineID else { return error(404, "unit \(name) is not loaded on machine \(machineID)") }
            guard let record = try await registry.machines().first(where: { $0.id == machine }), let endpoint = record.endpoint else {
                return error(502, "machine \(machine) publishes no endpoint")
            }
            let target = try FleetEndpoint(endpoint, tls: forwardingTLS)
            let uri = request.uri.contains("machine=") ? request.uri : request.uri + "&machine=" + machine
            let follow = Self.query(uri)["follow"].map { $0 == "true" || $0 == "1" } ?? false
            // The first answer (or its error) is relayed as it is; a follow then streams.
            let first = try await target.perform("GET", follow ? uri.replacingOccurrences(of: "follow=", with: "nofollow=") : uri)
            guard follow, first.status < 300 else {
                var relayed = HTTPResponse(
                    HTTPResponseStatus(statusCode: first.status), contentType: first.header("Content-Type") ?? "text/plain", bytes: first.body)
                relayed.headers = [("Content-Type", first.header("Content-Type") ?? "text/plain")]
                return relayed
            }
            let (chunks, sink) = AsyncStream<[UInt8]>.makeStream()
            sink.yield(first.body)
            let streamURI = uri.replacingOccurrences(of: "lines=", with: "oldlines=") + "&lines=0"
            let exchange = Task {
                defer { sink.finish() }
                return try await target.perform("GET", streamURI, bodySink: { bytes in
                    sink.yield(bytes)
                    return true
                })
            }
            var response = HTTPResponse(.ok, contentType: "text/plain; charset=utf-8", body: "")
            response.stream = HTTPBodyStream { writer in
                await withTaskCancellationHandler {
                    for await chunk in chunks {
                        do { try await writer.write(chunk) } catch { break }
                    }
                } onCancel: {
                    exchange.cancel()
                }
            }
            return response
        } catch {
            return self.error(502, "\(error)")
        }
    }

    private func metrics() async -> HTTPResponse {
        var text = ""
        func metric(_ name: String, _ help: String, _ type: String, _ value: Int) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        if let engine {
            metric("fleet_engine_leader", "Whether this machine's engine leads (1) or not (0).", "gauge", await engine.isLeader ? 1 : 0)
            metric("fleet_engine_reconcile_passes_total", "Engine reconcile passes made while leading.", "counter", await engine.passes)
        }
        if let agent {
            let units = await agent.units
            metric("fleet_agent_units", "Units this machine's agent has loaded.", "gauge", units.count)
            metric("fleet_agent_units_launched", "Units this machine's agent has launched.", "gauge", units.values.filter { $0.desired == "launched" }.count)
            metric("fleet_agent_state_publishes_total", "Unit states published to etcd.", "counter", await agent.statePublishes)
            metric("fleet_agent_state_requests_total", "etcd requests made to publish unit states.", "counter", await agent.stateRequests)
        }
        return HTTPResponse(.ok, contentType: "text/plain; version=0.0.4", body: text)
    }

    // MARK: Helpers

    private func pageToken(_ request: HTTPRequest) throws(FleetSchema.TokenError) -> FleetSchema.PageToken {
        let values = Self.queryValues(request.uri, "nextPageToken")
        if values.count > 1 { throw FleetSchema.TokenError(message: "too many values for page token") }
        guard let value = values.first else { return FleetSchema.PageToken(page: 1) }
        return try FleetSchema.PageToken(decoding: value)
    }

    /// A request's query by name; a repeated name keeps its first value.
    static func query(_ uri: String) -> [String: String] {
        Dictionary(HTTPQuery.pairs(inTarget: uri).map { ($0.name, $0.value) }) { first, _ in first }
    }

    static func queryValues(_ uri: String, _ name: String) -> [String] {
        HTTPQuery.pairs(inTarget: uri).filter { $0.name == name }.map(\.value)
    }

    private func json<Value: Encodable>(_ status: Int, _ value: Value) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)) ?? Data()
        return HTTPResponse(HTTPResponseStatus(statusCode: status), contentType: "application/json", bytes: [UInt8](body))
    }

    private func error(_ status: Int, _ message: String) -> HTTPResponse {
        json(status, FleetSchema.ErrorBody(code: status, message: message))
    }
}
