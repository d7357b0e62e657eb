import Foundation
public import UnitFile

/// fleet's API v1 shapes (`schema/v1.json`): the JSON fleetctl and API clients exchange.
/// Keys encode in alphabetical order, as Go's generated structs do.
public enum FleetSchema {
    public struct UnitOption: Codable, Sendable, Hashable {
        public var name: String
        public var section: String
        public var value: String

        public init(section: String, name: String, value: String) {
            self.section = section
            self.name = name
            self.value = value
        }
    }

    public struct Unit: Codable, Sendable, Hashable {
        public var currentState: String?
        public var desiredState: String?
        public var machineID: String?
        public var name: String
        public var options: [UnitOption]?

        public init(name: String, options: [UnitOption]? = nil, desiredState: String? = nil, currentState: String? = nil, machineID: String? = nil) {
            self.name = name
            self.options = options
            self.desiredState = desiredState
            self.currentState = currentState
            self.machineID = machineID
        }

        // A PUT body may omit the name (the URL has it).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            currentState = try container.decodeIfPresent(String.self, forKey: .currentState)
            desiredState = try container.decodeIfPresent(String.self, forKey: .desiredState)
            machineID = try container.decodeIfPresent(String.self, forKey: .machineID)
            name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
            options = try container.decodeIfPresent([UnitOption].self, forKey: .options)
        }
    }

    public struct UnitState: Codable, Sendable, Hashable {
        public var hash: String
        public var machineID: String
        public var name: String
        public var systemdActiveState: String
        public var systemdLoadState: String
        public var systemdSubState: String

        public init(name: String, hash: String, machineID: String, load: String, active: String, sub: String) {
            self.name = name
            self.hash = hash
            self.machineID = machineID
            systemdLoadState = load
            systemdActiveState = active
            systemdSubState = sub
        }
    }

    public struct Machine: Codable, Sendable, Hashable {
        public var id: String
        public var metadata: [String: String]?
        public var primaryIP: String

        public init(id: String, primaryIP: String, metadata: [String: String]) {
            self.id = id
            self.primaryIP = primaryIP
            self.metadata = metadata.isEmpty ? nil : metadata
        }
    }

    public struct UnitPage: Codable, Sendable {
        public var nextPageToken: String?
        public var units: [Unit]
        public init(units: [Unit], nextPageToken: String?) {
            self.units = units
            self.nextPageToken = nextPageToken
        }
    }

    public struct UnitStatePage: Codable, Sendable {
        public var nextPageToken: String?
        public var states: [UnitState]
        public init(states: [UnitState], nextPageToken: String?) {
            self.states = states
            self.nextPageToken = nextPageToken
        }
    }

    public struct MachinePage: Codable, Sendable {
        public var machines: [Machine]
        public var nextPageToken: String?
        public init(machines: [Machine], nextPageToken: String?) {
            self.machines = machines
            self.nextPageToken = nextPageToken
        }
    }

    /// `{"error":{"code":404,"message":"unit does not exist"}}`.
    public struct ErrorBody: Codable, Sendable {
        public struct Entity: Codable, Sendable {
            public var code: Int
            public var message: String
        }
        public var error: Entity

        public init(code: Int, message: String) { error = Entity(code: code, message: message) }
    }

    /// One JSON-Patch operation of `PATCH /fleet/v1/machines`.
    public struct PatchOperation: Codable, Sendable {
        public var op: String
        public var path: String
        public var value: String?

        public init(op: String, path: String, value: String? = nil) {
            self.op = op
            self.path = path
            self.value = value
        }
    }

    /// A page position: fleet encodes `{Limit uint16, Page uint16}` little-endian in
    /// URL-safe base64 and accepts only its one limit, 100.
    public struct PageToken: Sendable, Hashable {
        public static let limit: UInt16 = 100
        public var page: UInt16

        public init(page: UInt16) { self.page = page }

        public var encoded: String {
            let bytes = [UInt8(Self.limit & 0xff), UInt8(Self.limit >> 8), UInt8(page & 0xff), UInt8(page >> 8)]
            return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        }

        public init(decoding text: String) throws(TokenError) {
            let standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            guard let data = Data(base64Encoded: standard), data.count >= 4 else { throw TokenError(message: "illegal base64 data in page token") }
            let bytes = [UInt8](data)
            let limit = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
            guard limit == Self.limit else { throw TokenError(message: "token limit must be \(Self.limit)") }
            page = UInt16(bytes[2]) | UInt16(bytes[3]) << 8
            guard page > 0 else { throw TokenError(message: "token page must be greater than zero") }
        }

        /// The slice of `items` on this page, and the next page's token when there is more.
        public func slice<Item>(_ items: [Item]) -> ([Item], String?) {
            let start = Int(page - 1) * Int(Self.limit)
            guard start < items.count else { return ([], nil) }
            let end = start + Int(Self.limit)
            if end >= items.count { return (Array(items[start...]), end == items.count ? PageToken(page: page + 1).encoded : nil) }
            return (Array(items[start..<end]), PageToken(page: page + 1).encoded)
        }
    }

    public struct TokenError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// A unit file as options, in file order.
    public static func options(of file: UnitFile) -> [UnitOption] {
        file.sections.flatMap { section in section.entries.map { UnitOption(section: section.name, name: $0.key, value: $0.value) } }
    }

    /// Options back to a unit file's text (sections in first-appearance order).
    public static func text(of options: [UnitOption]) throws -> String {
        var file = UnitFile()
        for option in options { file.append(option.name, option.value, in: option.section) }
        return try file.serialized()
    }
}
