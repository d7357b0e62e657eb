import Flannel
import Net
import Platform

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Installs flanneld's masquerade and forward rules with whichever tool the host has,
/// iptables first (it coexists with Docker's rules, whose FORWARD policy DROP only an
/// iptables ACCEPT in the same table lifts), else nft. `ensure` is cheap when everything
/// is in place and, like flannel, rebuilds all rules in order when any went missing.
struct MasqueradeManager: Sendable {
    enum Tool: Sendable { case iptables, nftables }

    let tool: Tool
    let network: IPv4Network
    let subnet: IPv4Network
    let forwardRules: Bool

    init(network: IPv4Network, subnet: IPv4Network, forwardRules: Bool) throws {
        if Self.available("iptables") {
            tool = .iptables
        } else if Self.available("nft") {
            tool = .nftables
        } else {
            throw FlannelError("--ip-masq needs iptables or nft, and neither is installed")
        }
        self.network = network
        self.subnet = subnet
        self.forwardRules = forwardRules
    }

    /// Returns true when rules had to be (re)installed.
    @discardableResult
    func ensure() throws -> Bool {
        switch tool {
        case .iptables: return try ensureIPTables()
        case .nftables: return try ensureNFTables()
        }
    }

    private func ensureIPTables() throws -> Bool {
        let rules = MasqueradeRules.iptables(network: network, subnet: subnet, forwardRules: forwardRules)
        let missing = rules.contains { rule in
            ChildProcess.run(["iptables", "-w", "-t", rule.table, "-C", rule.chain] + rule.arguments)?.status != 0
        }
        guard missing else { return false }
        // Remove what is left (jumps first, then the chains' contents), then add in order.
        for rule in rules where rule.chain == "POSTROUTING" || rule.chain == "FORWARD" {
            while ChildProcess.run(["iptables", "-w", "-t", rule.table, "-D", rule.chain] + rule.arguments)?.status == 0 {}
        }
        for (table, chain) in [("nat", MasqueradeRules.natChain), ("filter", MasqueradeRules.forwardChain)] {
            _ = ChildProcess.run(["iptables", "-w", "-t", table, "-N", chain])
            _ = ChildProcess.run(["iptables", "-w", "-t", table, "-F", chain])
        }
        for rule in rules {
            let outcome = ChildProcess.run(["iptables", "-w", "-t", rule.table, "-A", rule.chain] + rule.arguments)
            guard outcome?.status == 0 else {
                throw FlannelError(
                    "iptables -t \(rule.table) -A \(rule.chain) \(rule.arguments.joined(separator: " ")): "
                        + (outcome?.output ?? "cannot run iptables"))
            }
        }
        return true
    }

    private func ensureNFTables() throws -> Bool {
        if let listed = ChildProcess.run(["nft", "list", "table", "ip", "flannel"]), listed.status == 0,
            listed.output.contains("masquerade"), listed.output.contains(subnet.description)
        {
            return false
        }
        let script = MasqueradeRules.nftables(network: network, subnet: subnet, forwardRules: forwardRules)
        let path = "/run/flannel-nft-\(getpid()).nft"
        guard let file = fopen(path, "w") else { throw FlannelError("cannot write \(path)") }
        fputs(script, file)
        fclose(file)
        defer { unlink(path) }
        let outcome = ChildProcess.run(["nft", "-f", path])
        guard outcome?.status == 0 else { throw FlannelError("nft -f: \(outcome?.output ?? "cannot run nft")") }
        return true
    }

    static func available(_ program: String) -> Bool {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(program)", X_OK) == 0 }
    }
}
