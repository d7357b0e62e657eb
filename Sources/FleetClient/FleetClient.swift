import EtcdClient
public import FleetRegistry
import Foundation

/// What fleetctl asks of fleet, whichever way it reaches it: fleetd's HTTP API
/// (`--driver=api`, the default) or the registry in etcd directly (`--driver=etcd`).
public protocol FleetClient: Sendable {
    func units() async throws -> [FleetSchema.Unit]
    func unit(_ name: String) async throws -> FleetSchema.Unit?
    /// Creates a unit, or (options given) replaces its content, or sets its desired state.
    func set(_ unit: FleetSchema.Unit) async throws
    func destroy(_ name: String) async throws
    func states() async throws -> [FleetSchema.UnitState]
    func machines() async throws -> [FleetSchema.Machine]
    /// A unit's status or recent output, from the machine that runs it (`fleetctl status`,
    /// `journal`); `sink` gets the text as it arrives.
    func unitText(_ name: String, _ what: UnitTextKind, machine: String?, sink: @escaping @Sendable (String) -> Void) async throws
}

public enum UnitTextKind: Sendable {
    case status(lines: Int)
    case journal(lines: Int, follow: Bool)

    var route: String {
        switch self {
        case .status(let lines): "status?lines=\(lines)"
        case .journal(let lines, let follow): "journal?lines=\(lines)" + (follow ? "&follow=true" : "")
        }
    }
}

/// An error fleet's API answered (or the registry refused), with its status.
public struct FleetClientError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var description: String { message }

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }
}

/// fleetd's HTTP API v1 over its unix socket or TCP.
public struct APIFleetClient: FleetClient {
    let endpoint: FleetEndpoint
    let timeout: Duration

    public init(endpoint: FleetEndpoint, timeout: Duration) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    private func call(_ method: String, _ path: String, body: Data? = nil) async throws -> (Int, Data) {
        let response: HTTP1Response
        do {
            response = try await endpoint.perform(
                method, path, body: body.map { [UInt8]($0) }, contentType: body == nil ? nil : "application/json", timeout: timeout)
        } catch {
            throw FleetClientError(status: 0, message: "error fetching from \(endpoint): \(error)")
        }
        if response.status >= 400 {
            let message = (try? JSONDecoder().decode(FleetSchema.ErrorBody.self, from: Data(response.body)))?.error.message ?? ""
            throw FleetClientError(status: response.status, message: message.isEmpty ? "HTTP \(response.status)" : message)
        }
        return (response.status, Data(response.body))
    }

    /// Every page of a paged list.
    private func pages<Page: Decodable>(_ path: String, _ type: Page.Type, token: (Page) -> String?) async throws -> [Page] {
        var result: [Page] = []
        var next: String?
        repeat {
            let query = next.map { "?nextPageToken=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
            let (_, body) = try await call("GET", path + query)
            let page = try JSONDecoder().decode(Page.self, from: body)
            result.append(page)
            next = token(page)
        } while next != nil
        return result
    }

    public func units() async throws -> [FleetSchema.Unit] {
        try await pages("/fleet/v1/units", FleetSchema.UnitPage.self) { $0.units.isEmpty ? nil : $0.nextPageToken }.flatMap(\.units)
    }

    public func unit(_ name: String) async throws -> FleetSchema.Unit? {
        do {
            let (_, body) = try await call("GET", "/fleet/v1/units/" + name)
            return try JSONDecoder().decode(FleetSchema.Unit.self, from: body)
        } catch let error as FleetClientError where error.status == 404 {
            return nil
        }
    }

    public func set(_ unit: FleetSchema.Unit) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        _ = try await call("PUT", "/fleet/v1/units/" + unit.name, body: try encoder.encode(unit))
    }

    public func destroy(_ name: String) async throws {
        _ = try await call("DELETE", "/fleet/v1/units/" + name)
    }

    public func states() async throws -> [FleetSchema.UnitState] {
        try await pages("/fleet/v1/state", FleetSchema.UnitStatePage.self) { $0.states.isEmpty ? nil : $0.nextPageToken }.flatMap(\.states)
    }

    public func machines() async throws -> [FleetSchema.Machine] {
        try await pages("/fleet/v1/machines", FleetSchema.MachinePage.self) { $0.machines.isEmpty ? nil : $0.nextPageToken }
            .flatMap(\.machines)
    }

    public func unitText(_ name: String, _ what: UnitTextKind, machine: String?, sink: @escaping @Sendable (String) -> Void) async throws {
        let path = "/coreos/v1/units/\(name)/\(what.route)" + (machine.map { "&machine=" + $0 } ?? "")
        let response: HTTP1Response
        do {
            response = try await endpoint.perform("GET", path, timeout: timeout) { bytes in
                sink(String(decoding: bytes, as: UTF8.self))
                return true
            }
        } catch {
            throw FleetClientError(status: 0, message: "error fetching from \(endpoint): \(error)")
        }
        if response.status >= 400 {
            let message = (try? JSONDecoder().decode(FleetSchema.ErrorBody.self, from: Data(response.body)))?.error.message ?? "HTTP \(response.status)"
            throw FleetClientError(status: response.status, message: message)
        }
    }
}

/// The registry in etcd, read and written by fleetctl itself.
public struct EtcdFleetClient: FleetClient {
    let registry: FleetRegistry

    public init(registry: FleetRegistry) { self.registry = registry }

    public func units() async throws -> [FleetSchema.Unit] { try await registry.schemaUnits() }
    public func unit(_ name: String) async throws -> FleetSchema.Unit? { try await registry.schemaUnit(name) }

    public func set(_ unit: FleetSchema.Unit) async throws {
        do {
            _ = try await registry.set(unit)
        } catch let refusal as FleetRegistry.Refusal {
            throw FleetClientError(status: refusal.status, message: refusal.message)
        }
    }

    public func destroy(_ name: String) async throws {
        do {
            try await registry.destroy(name)
        } catch FleetRegistry.Failure.unitNotFound {
            throw FleetClientError(status: 404, message: "unit does not exist")
        }
    }

    public func states() async throws -> [FleetSchema.UnitState] { try await registry.schemaStates() }
    public func machines() async throws -> [FleetSchema.Machine] { try await registry.schemaMachines() }

    public func unitText(_ name: String, _ what: UnitTextKind, machine: String?, sink: @escaping @Sendable (String) -> Void) async throws {
        // The machine's own fleetd answers; its endpoint is in its machine record.
        var target = machine
        if target == nil { target = try await registry.placement(of: name) }
        guard let target else { throw FleetClientError(status: 404, message: "unit \(name) is not scheduled on any machine") }
        guard let record = try await registry.machines().first(where: { $0.id == target }), let endpoint = record.endpoint else {
            throw FleetClientError(status: 502, message: "machine \(target) publishes no endpoint")
        }
        try await APIFleetClient(endpoint: try FleetEndpoint(endpoint), timeout: .seconds(10))
            .unitText(name, what, machine: target, sink: sink)
    }
}
