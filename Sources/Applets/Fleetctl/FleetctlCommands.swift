import CLI
import FleetClient
import FleetRegistry
import Foundation
import GoFormat
import Glibc

extension Context {
    mutating func run(_ command: String, _ arguments: [String]) async throws -> Int32 {
        switch command {
        case "submit": return try await submit(arguments)
        case "load": return try await setState(arguments, to: "loaded", verb: "load", create: true)
        case "start": return try await setState(arguments, to: "launched", verb: "start", create: true)
        case "stop": return try await setState(arguments, to: "loaded", verb: "stop", create: false)
        case "unload": return try await setState(arguments, to: "inactive", verb: "unload", create: false)
        case "restart": return try await restart(arguments)
        case "destroy": return try await destroy(arguments)
        case "cat": return try await cat(arguments)
        case "list-units": return try await listUnits()
        case "list-unit-files": return try await listUnitFiles()
        case "list-machines": return try await listMachines()
        case "status": return try await status(arguments)
        case "journal": return try await journal(arguments)
        case "ssh": return try await ssh(arguments)
        default: return 1
        }
    }

    // MARK: Creating and changing units

    /// fleet's lazy creation: a unit already in the cluster is used as it is (with a
    /// warning when the local file differs, or replaced with `--replace`); else the local
    /// file; else, for an instance, its template from the cluster or from disk.
    mutating func createUnits(_ arguments: [String]) async throws {
        for argument in arguments {
            let name = Self.unitName(argument)
            if let existing = try await client.unit(name) {
                if FileManager.default.fileExists(atPath: argument) {
                    let local = try Self.unitFile(argument)
                    if Self.hash(local.options) != Self.hash(existing.options ?? []) {
                        if flag("replace") {
                            try await client.set(FleetSchema.Unit(name: name, options: local.options))
                        } else {
                            io.error.line("WARNING: Unit \(name) in registry differs from local unit file \(argument). Add --replace to override.")
                        }
                    }
                }
                continue
            }
            var options: [FleetSchema.UnitOption]
            if FileManager.default.fileExists(atPath: argument) {
                options = try Self.unitFile(argument).options
            } else {
                guard let at = name.firstIndex(of: "@"), let dot = name.lastIndex(of: "."), name.index(after: at) < dot else {
                    throw FleetctlFailure("Error creating units: unable to find unit \(name) in registry or on filesystem")
                }
                let template = String(name[...at]) + String(name[dot...])
                if let registered = try await client.unit(template) {
                    options = registered.options ?? []
                } else {
                    let file = ((argument as NSString).deletingLastPathComponent as NSString).appendingPathComponent(template)
                    guard FileManager.default.fileExists(atPath: file) else {
                        throw FleetctlFailure("Error creating units: unable to find unit \(name) or template unit \(template) in registry or on filesystem")
                    }
                    options = try Self.unitFile(file).options
                }
            }
            do {
                try await client.set(FleetSchema.Unit(name: name, options: options, desiredState: "inactive"))
            } catch {
                throw FleetctlFailure("Error creating units: failed creating unit \(name): \(error)")
            }
        }
    }

    mutating func submit(_ arguments: [String]) async throws -> Int32 {
        if arguments.isEmpty {
            io.error.line("No units given")
            return 0
        }
        try await createUnits(arguments)
        return 0
    }

    /// load, start, stop, unload: set the desired state, then wait (unless `--no-block`)
    /// until each unit reports it; global units are only triggered.
    mutating func setState(_ arguments: [String], to state: String, verb: String, create: Bool) async throws -> Int32 {
        if arguments.isEmpty {
            io.error.line("No units given")
            return 0
        }
        if create { try await createUnits(arguments) }
        var waiting: [String] = []
        for argument in arguments {
            let name = Self.unitName(argument)
            guard let unit = try await client.unit(name) else {
                if create { throw FleetctlFailure("Error \(verb == "start" ? "starting" : "loading") units: unable to find unit \(name)") }
                io.error.line("Unable to find unit \(name)")
                continue
            }
            if unit.desiredState == state && !(verb == "stop" && unit.currentState == "launched") {
                continue
            }
            if verb == "stop" && unit.desiredState != "launched" {
                io.error.line("Unable to stop unit \(name) in state \(unit.desiredState ?? "inactive")")
                continue
            }
            try await client.set(FleetSchema.Unit(name: name, desiredState: state))
            if Self.isGlobal(unit) {
                io.output.line("Triggered global unit \(name) \(verb)")
            } else {
                waiting.append(name)
            }
        }
        return try await waitFor(waiting, state: state)
    }

    /// Polls each unit every 500 ms (fleet's pace, so `--block-attempts` means the same)
    /// until it reports `state`, printing `Unit <name> <state> on <machine>`.
    mutating func waitFor(_ names: [String], state: String) async throws -> Int32 {
        if flag("no-block") || names.isEmpty { return 0 }
        let attempts = number("block-attempts")
        var pending = names
        var attempt = 0
        var failed = false
        while !pending.isEmpty {
            var still: [String] = []
            for name in pending {
                if let unit = try? await client.unit(name), unit.currentState ?? "inactive" == state {
                    var message = "Unit \(name) \(state)"
                    if let machine = unit.machineID, !machine.isEmpty { message += " on " + (await machineLegend(machine, full: false)) }
                    io.output.line(message)
                } else {
                    still.append(name)
                }
            }
            pending = still
            attempt += 1
            if pending.isEmpty { break }
            if attempts > 0 && attempt >= attempts {
                for name in pending { io.error.line("Error waiting for unit states, exit status: timed out waiting for unit \(name) to report state \(state)") }
                failed = true
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return failed ? 1 : 0
    }

    /// Rolling restart: each unit is stopped and started again before the next.
    mutating func restart(_ arguments: [String]) async throws -> Int32 {
        if arguments.isEmpty {
            io.error.line("No units given")
            return 0
        }
        for argument in arguments {
            let name = Self.unitName(argument)
            guard let unit = try await client.unit(name) else {
                io.error.line("Unable to find unit \(name)")
                return 1
            }
            if Self.isGlobal(unit) {
                try await client.set(FleetSchema.Unit(name: name, desiredState: "loaded"))
                try await client.set(FleetSchema.Unit(name: name, desiredState: "launched"))
                io.output.line("Triggered global unit \(name) restart")
                continue
            }
            try await client.set(FleetSchema.Unit(name: name, desiredState: "loaded"))
            if try await waitFor([name], state: "loaded") != 0 { return 1 }
            try await client.set(FleetSchema.Unit(name: name, desiredState: "launched"))
            if try await waitFor([name], state: "launched") != 0 { return 1 }
        }
        return 0
    }

    mutating func destroy(_ arguments: [String]) async throws -> Int32 {
        if arguments.isEmpty {
            io.error.line("No units given")
            return 0
        }
        var status: Int32 = 0
        for argument in arguments {
            let name = Self.unitName(argument)
            do {
                try await client.destroy(name)
                io.output.line("Destroyed \(name)")
            } catch let error as FleetClientError where error.status == 404 {
                // fleet says nothing of a unit that was not there.
                continue
            } catch {
                io.error.line("Error destroying units: \(error)")
                status = 1
            }
        }
        return status
    }

    mutating func cat(_ arguments: [String]) async throws -> Int32 {
        guard arguments.count == 1 else {
            io.error.line("One unit file must be provided")
            return 1
        }
        let name = Self.unitName(arguments[0])
        guard let unit = try await client.unit(name) else {
            io.error.line("Unit \(name) not found")
            return 1
        }
        io.output.write(try FleetSchema.text(of: unit.options ?? []))
        return 0
    }

    // MARK: Listing

    func columns(_ valid: [String]) throws -> [String] {
        let fields = value("fields")
        guard !fields.isEmpty else { throw FleetctlFailure("Must define output format") }
        let columns = fields.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for column in columns where !valid.contains(column) { throw FleetctlFailure("Invalid key in output format: \"\(column)\"") }
        return columns
    }

    mutating func listUnits() async throws -> Int32 {
        let columns = try columns(["active", "hash", "load", "machine", "sub", "unit"])
        let states: [FleetSchema.UnitState]
        do {
            states = try await client.states()
        } catch {
            throw FleetctlFailure("Error retrieving list of units from repository: \(error)")
        }
        let full = flag("full")
        var rows: [[String]] = flag("no-legend") ? [] : [columns.map { $0.uppercased() }]
        for state in states {
            var row: [String] = []
            for column in columns {
                switch column {
                case "unit": row.append(state.name)
                case "load": row.append(state.systemdLoadState)
                case "active": row.append(state.systemdActiveState)
                case "sub": row.append(state.systemdSubState)
                case "machine": row.append(state.machineID.isEmpty ? "-" : await machineLegend(state.machineID, full: full))
                default: row.append(state.hash.isEmpty ? "-" : (full ? state.hash : String(state.hash.prefix(7))))
                }
            }
            rows.append(row)
        }
        io.output.write(GoTabWriter.format(rows))
        return 0
    }

    mutating func listUnitFiles() async throws -> Int32 {
        let columns = try columns(["desc", "dstate", "global", "hash", "state", "target", "tmachine", "unit"])
        if columns.contains("tmachine") { io.error.line("WARNING: The \"tmachine\" field is deprecated. Use \"target\" instead") }
        let units: [FleetSchema.Unit]
        do {
            units = try await client.units()
        } catch {
            throw FleetctlFailure("Error retrieving list of units from repository: \(error)")
        }
        let full = flag("full")
        var rows: [[String]] = flag("no-legend") ? [] : [columns.map { $0.uppercased() }]
        for unit in units {
            let global = Self.isGlobal(unit)
            var row: [String] = []
            for column in columns {
                switch column {
                case "unit": row.append(unit.name)
                case "global": row.append(global ? "true" : "false")
                case "dstate": row.append(unit.desiredState.flatMap { $0.isEmpty ? nil : $0 } ?? "-")
                case "state": row.append(global || (unit.currentState ?? "").isEmpty ? "-" : unit.currentState!)
                case "hash":
                    let hash = Self.hash(unit.options ?? [])
                    row.append(full ? hash : String(hash.prefix(7)))
                case "desc":
                    row.append((unit.options ?? []).last { $0.section == "Unit" && $0.name == "Description" }?.value ?? "-")
                default:
                    if global {
                        row.append("global")
                    } else if let machine = unit.machineID, !machine.isEmpty {
                        row.append(await machineLegend(machine, full: full))
                    } else {
                        row.append("-")
                    }
                }
            }
            rows.append(row)
        }
        io.output.write(GoTabWriter.format(rows))
        return 0
    }

    mutating func listMachines() async throws -> Int32 {
        let columns = try columns(["ip", "machine", "metadata"])
        let machines: [FleetSchema.Machine]
        do {
            machines = try await client.machines()
        } catch {
            throw FleetctlFailure("Error retrieving list of active machines: \(error)")
        }
        let full = flag("full")
        var rows: [[String]] = flag("no-legend") ? [] : [columns.map { $0.uppercased() }]
        for machine in machines {
            rows.append(
                columns.map { column in
                    switch column {
                    case "machine": return full ? machine.id : String(machine.id.prefix(8)) + "..."
                    case "ip": return machine.primaryIP.isEmpty ? "-" : machine.primaryIP
                    default:
                        guard let metadata = machine.metadata, !metadata.isEmpty else { return "-" }
                        return metadata.keys.sorted().map { key in
                            let value = metadata[key]!
                            return ["<=", ">=", "!=", "==", "<", ">"].contains(where: value.hasPrefix) ? key + value : key + "=" + value
                        }.joined(separator: ",")
                    }
                })
        }
        io.output.write(GoTabWriter.format(rows))
        return 0
    }
}
