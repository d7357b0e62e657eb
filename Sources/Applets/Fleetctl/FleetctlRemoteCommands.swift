import CLI
import FleetClient
import FleetRegistry
import Foundation
import Glibc

extension Context {
    /// The status of each unit, from the fleetd of the machine that runs it (systemd's
    /// `systemctl status` over ssh when that machine publishes no endpoint).
    mutating func status(_ arguments: [String]) async throws -> Int32 {
        var status: Int32 = 0
        for (index, argument) in arguments.enumerated() {
            let name = Self.unitName(argument)
            guard let unit = try await client.unit(name), unit.currentState != "inactive" || Self.isGlobal(unit) else {
                io.error.line("Unit \(name) does not exist.")
                status = 1
                continue
            }
            if index > 0 { io.output.line() }
            let io = self.io
            do {
                try await client.unitText(name, .status(lines: number("lines")), machine: nil) { io.output.write($0) }
            } catch let error as FleetClientError where error.status == 502 {
                status = max(status, try await remote(unit, command: "systemctl status -l \(name)"))
            } catch {
                io.error.line("Error running remote command: \(error)")
                status = 1
            }
        }
        return status
    }

    mutating func journal(_ arguments: [String]) async throws -> Int32 {
        guard arguments.count == 1 else {
            io.error.line("One unit file must be provided.")
            return 1
        }
        let name = Self.unitName(arguments[0])
        guard let unit = try await client.unit(name), unit.machineID != nil || Self.isGlobal(unit) else {
            io.error.line("Unit \(name) does not exist.")
            return 1
        }
        let follow = flag("follow")
        let io = self.io
        do {
            try await client.unitText(name, .journal(lines: number("lines"), follow: follow), machine: nil) { io.output.write($0) }
        } catch let error as FleetClientError where error.status == 502 {
            var command = "journalctl --unit \(name) --no-pager -n \(number("lines")) --output \(value("output"))"
            if follow { command += " -f" }
            if flag("sudo") { command = "sudo " + command }
            return try await remote(unit, command: command)
        }
        return 0
    }

    /// `fleetctl ssh MACHINE|UNIT [COMMAND...]` with the system `ssh`.
    mutating func ssh(_ arguments: [String]) async throws -> Int32 {
        var arguments = arguments
        var target: FleetSchema.Machine?
        if !value("machine").isEmpty {
            target = try await findMachine(value("machine"))
        } else if !value("unit").isEmpty {
            target = try await machineOf(Self.unitName(value("unit")))
        } else {
            guard !arguments.isEmpty else {
                io.error.line("Provide a single machine or unit")
                return 1
            }
            let lookup = arguments.removeFirst()
            target = try await findMachine(lookup)
            if target == nil { target = try await machineOf(Self.unitName(lookup)) }
        }
        guard let target else {
            io.error.line("Unable to find machine or unit")
            return 1
        }
        return runSSH(to: target.primaryIP, command: arguments.joined(separator: " "), agent: flag("forward-agent"))
    }

    private mutating func findMachine(_ lookup: String) async throws -> FleetSchema.Machine? {
        let matches = try await client.machines().filter { $0.id.hasPrefix(lookup) }
        if matches.count > 1 { throw FleetctlFailure("Found more than one machine matching \(lookup)") }
        return matches.first
    }

    private mutating func machineOf(_ unit: String) async throws -> FleetSchema.Machine? {
        guard let machine = try await client.unit(unit)?.machineID else { return nil }
        return await self.machine(machine)
    }

    private mutating func remote(_ unit: FleetSchema.Unit, command: String) async throws -> Int32 {
        guard let id = unit.machineID, let machine = await machine(id) else {
            io.error.line("Unit \(unit.name) does not appear to be running.")
            return 1
        }
        return runSSH(to: machine.primaryIP, command: command, agent: false)
    }

    private func runSSH(to address: String, command: String, agent: Bool) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        var arguments = SSHCommand.options(self) + ["-p", value("ssh-port")]
        if agent { arguments.append("-A") }
        let tunnel = value("tunnel")
        if !tunnel.isEmpty { arguments += ["-J", value("ssh-username") + "@" + tunnel] }
        arguments.append(value("ssh-username") + "@" + address)
        if !command.isEmpty { arguments.append(command) }
        process.arguments = arguments
        do {
            try process.run()
        } catch {
            io.error.line("Failed running ssh: \(error.localizedDescription)")
            return 1
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
