import Crypto
import Foundation
public import UnitFile

/// A fleet unit: a systemd unit file whose optional `[X-Fleet]` section says where it may
/// run. The text is kept as submitted (fleet units are immutable once submitted; the hash
/// names the content), and the requirements are parsed and checked once, here.
public struct FleetUnit: Sendable, Hashable {
    public let name: UnitName
    /// The unit file as submitted.
    public let text: String
    public let file: UnitFile
    public let requirements: FleetRequirements

    /// SHA-1 of the text, lowercase hex: fleet's unit hash (`list-unit-files` shows 7 digits).
    public var hash: String { Self.hash(of: text) }

    public static func hash(of text: String) -> String {
        Insecure.SHA1.hash(data: Data(text.utf8)).map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
        }.joined()
    }

    /// Parses and checks a unit. A template (`foo@.service`) may be stored but not
    /// scheduled; an instance is its template's text under the instance's name.
    public init(name: String, text: String) throws(FleetUnitError) {
        let unitName: UnitName
        do {
            unitName = try UnitName(name)
        } catch {
            throw FleetUnitError(unit: name, line: nil, message: error.description)
        }
        if unitName.isTemplate, ![.path, .service, .socket, .target, .timer].contains(unitName.type) {
            throw FleetUnitError(unit: name, line: nil, message: "unit type \(unitName.type.rawValue) cannot be a template")
        }
        let file: UnitFile
        do {
            file = try UnitFile(parsing: text, file: name)
        } catch {
            throw FleetUnitError(unit: name, line: nil, message: "\(error)")
        }
        self.name = unitName
        self.text = text
        self.file = file
        requirements = try FleetRequirements(file, unit: unitName)
    }

    /// Whether this unit runs everywhere its metadata and conflicts allow.
    public var isGlobal: Bool { requirements.isGlobal }
}

/// A unit or its `[X-Fleet]` section is not acceptable; `line` when one line is at fault.
public struct FleetUnitError: Error, Hashable, Sendable, CustomStringConvertible {
    public var unit: String
    public var line: Int?
    public var message: String

    public var description: String { "\(unit)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// The `[X-Fleet]` requirements of a unit, with `%n %N %p %i` expanded.
public struct FleetRequirements: Sendable, Hashable {
    /// `MachineID=`: the first one counts (full 32-hex ID, or fleet's 8-character short one).
    public var machineID: String?
    /// `MachineOf=`: units this one must share a machine with.
    public var machineOf: [String] = []
    /// `MachineMetadata=`: per key the values allowed (a repeated key ORs), keys AND.
    public var metadata: [String: Set<String>] = [:]
    /// `Conflicts=`: globs of units this one may not share a machine with (both ways).
    public var conflicts: [String] = []
    /// `Global=`: run on every machine that the metadata and conflicts allow.
    public var isGlobal = false
    /// `Replaces=`: globs of units this one displaces from their machine.
    public var replaces: [String] = []

    public init() {}

    /// fleet's option names, with the deprecated (≤ 0.8) spellings they replace.
    static let aliases = [
        "X-ConditionMachineID": "MachineID", "X-ConditionMachineBootID": "MachineID", "X-ConditionMachineOf": "MachineOf",
        "X-ConditionMachineMetadata": "MachineMetadata", "X-Conflicts": "Conflicts",
    ]
    static let known: Set<String> = ["MachineID", "MachineOf", "MachineMetadata", "Conflicts", "Global", "Replaces"]

    init(_ file: UnitFile, unit: UnitName) throws(FleetUnitError) {
        let context = SpecifierContext(unit: unit)
        for section in file.sections where section.name == "X-Fleet" {
            for entry in section.entries {
                let key = Self.aliases[entry.key] ?? entry.key
                func fail(_ message: String) -> FleetUnitError { FleetUnitError(unit: unit.name, line: entry.line, message: message) }
                guard Self.known.contains(key) else { throw fail("unrecognized requirement \(entry.key) in [X-Fleet]") }
                let value: String
                do {
                    value = try Self.expand(entry.value, context: context)
                } catch {
                    throw fail(error.description)
                }
                switch key {
                case "MachineID":
                    if machineID == nil { machineID = value.trimmingCharacters(in: .whitespaces) }
                case "MachineOf":
                    machineOf += Self.words(value)
                case "MachineMetadata":
                    for pair in Self.words(value) {
                        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                        guard parts.count == 2, !parts[0].isEmpty else { throw fail("MachineMetadata wants key=value, got \"\(pair)\"") }
                        metadata[parts[0], default: []].insert(parts[1])
                    }
                case "Conflicts":
                    conflicts += Self.words(value)
                case "Global":
                    guard let flag = Self.boolean(value) else { throw fail("Global wants a boolean, got \"\(value)\"") }
                    isGlobal = flag
                case "Replaces":
                    replaces += Self.words(value)
                default:
                    break
                }
            }
        }
        if isGlobal && (machineID != nil || !machineOf.isEmpty || !replaces.isEmpty) {
            throw FleetUnitError(
                unit: unit.name, line: nil, message: "Global may only be combined with MachineMetadata and Conflicts")
        }
        if !replaces.isEmpty && !conflicts.isEmpty {
            throw FleetUnitError(unit: unit.name, line: nil, message: "Replaces cannot be combined with Conflicts")
        }
        if machineOf.contains(unit.name) {
            throw FleetUnitError(unit: unit.name, line: nil, message: "MachineOf cannot name the unit itself")
        }
    }

    /// `%n %N %p %i` (and `%%`), as fleet expands them in `[X-Fleet]` values; other
    /// specifiers are left for systemd.
    static func expand(_ value: String, context: SpecifierContext) throws(SpecifierError) -> String {
        var output = ""
        var characters = value.makeIterator()
        while let character = characters.next() {
            guard character == "%", let next = characters.next() else {
                output.append(character)
                continue
            }
            if "nNpi".contains(next) {
                output += try Specifiers.resolve("%" + String(next), in: context)
            } else {
                output += "%" + String(next)
            }
        }
        return output
    }

    /// Space-separated words; quotes group (`"region=us east" "disk=ssd"`).
    static func words(_ value: String) -> [String] { QuotedWords.split(value).words }

    static func boolean(_ value: String) -> Bool? {
        switch value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "yes", "y", "true", "t", "on": true
        case "0", "no", "n", "false", "f", "off": false
        default: nil
        }
    }
}
