import CLI
import FleetDaemon
import Platform

/// `coreos fleet` / `fleetd`: fleet's daemon (agent, engine, API) for one machine.
enum FleetCommand {
    static let usage = """
        Usage: fleetd [options]

        Options (each also FLEET_<NAME> in the environment and name=value in /etc/fleet/fleet.conf):
          --config PATH                     config file (default /etc/fleet/fleet.conf)
          --etcd_servers URLS               etcd endpoints, comma-separated or ["…","…"] (default http://127.0.0.1:2379)
          --etcd_key_prefix PREFIX          key prefix of fleet's state (default /_coreos.com/fleet/)
          --etcd_cafile/--etcd_certfile/--etcd_keyfile PATH   TLS to etcd
          --etcd_request_timeout SECONDS    per etcd request (default 5)
          --public_ip IP                    address published for this machine (default: the default route's)
          --metadata k=v,k=v                machine metadata for [X-Fleet] MachineMetadata=
          --agent_ttl DURATION              machine presence lease (default 30s)
          --engine_reconcile_interval SECONDS   safety-net reconcile period (default 2)
          --machine_grace DURATION          how long a lost machine keeps its units (default 60s)
          --disable_engine                  never lead the engine on this machine
          --machine-id ID                   this machine's ID (default /etc/machine-id)
          --listen unix://PATH|http(s)://HOST:PORT   API listeners, comma-separated (default unix:///var/run/fleet.sock)
          --api_certfile/--api_keyfile PATH the certificate an https:// listener serves
          --api_cafile PATH                 require client certificates signed by this CA on https:// listeners
          --unit_manager auto|systemd|embedded    who runs units (default auto)
          --log_directory PATH              embedded supervisor's unit logs (default /var/log/fleet)
          --verbosity N                     0 quiet, 1 engine decisions
          --version                         print the version

        """

    @Sendable static func main(_ argv: [String], io: StandardStreams) async -> Int32 {
        let arguments = Array(argv.dropFirst())
        if arguments.contains(where: { $0 == "--help" || $0 == "-h" || $0 == "-help" }) {
            io.output.write(usage)
            return ExitStatus.success
        }
        if arguments.contains(where: { $0 == "--version" || $0 == "-version" }) {
            io.output.line("fleetd version \(FleetVersion.daemon)")
            return ExitStatus.success
        }
        let configuration: FleetConfiguration
        do {
            configuration = try FleetConfiguration.load(arguments: arguments, environment: ProcessEnvironment.current)
        } catch {
            io.error.line("fleetd: \(error)")
            return ExitStatus.usage
        }
        Termination.install()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await FleetDaemon.run(configuration) { addresses in
                        io.error.line("fleetd: machine \(configuration.machineID) serving the API on \(addresses.joined(separator: ", "))")
                    }
                }
                group.addTask { await Termination.wait() }
                try await group.next()
                group.cancelAll()
                try await group.waitForAll()
            }
        } catch is CancellationError {
        } catch {
            io.error.line("fleetd: \(error)")
            return ExitStatus.failure
        }
        return ExitStatus.success
    }
}
