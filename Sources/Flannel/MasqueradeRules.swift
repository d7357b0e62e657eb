public import Net

/// flanneld's `--ip-masq` and FORWARD rules for a network `network` and this host's lease
/// `subnet`: traffic between flannel subnets is left alone, traffic leaving the network
/// is masqueraded (multicast excepted), traffic from outside to this host's subnet is left
/// alone, and other traffic from outside into the network is masqueraded.
public enum MasqueradeRules {
    /// One iptables rule: table, chain, and the match-and-target arguments.
    public struct Rule: Sendable, Hashable {
        public var table: String
        public var chain: String
        public var arguments: [String]
    }

    public static let natChain = "FLANNEL-POSTRTG"
    public static let forwardChain = "FLANNEL-FWD"

    /// The rules in their order; chains are jumped to from POSTROUTING and FORWARD.
    public static func iptables(network: IPv4Network, subnet: IPv4Network, forwardRules: Bool) -> [Rule] {
        let n = network.description
        let masq = ["-m", "comment", "--comment", "flanneld masq"]
        var rules = [
            Rule(table: "nat", chain: "POSTROUTING", arguments: masq + ["-j", natChain]),
            Rule(table: "nat", chain: natChain, arguments: ["-s", n, "-d", n] + masq + ["-j", "RETURN"]),
            Rule(table: "nat", chain: natChain, arguments: ["-s", n, "!", "-d", "224.0.0.0/4"] + masq + ["-j", "MASQUERADE"]),
            Rule(table: "nat", chain: natChain, arguments: ["!", "-s", n, "-d", subnet.description] + masq + ["-j", "RETURN"]),
            Rule(table: "nat", chain: natChain, arguments: ["!", "-s", n, "-d", n] + masq + ["-j", "MASQUERADE"]),
        ]
        if forwardRules {
            let forward = ["-m", "comment", "--comment", "flanneld forward"]
            rules += [
                Rule(table: "filter", chain: "FORWARD", arguments: forward + ["-j", forwardChain]),
                Rule(table: "filter", chain: forwardChain, arguments: ["-s", n] + forward + ["-j", "ACCEPT"]),
                Rule(table: "filter", chain: forwardChain, arguments: ["-d", n] + forward + ["-j", "ACCEPT"]),
            ]
        }
        return rules
    }

    /// The same as an nft script replacing table `ip flannel` in one transaction (for
    /// hosts with nftables and no iptables).
    public static func nftables(network: IPv4Network, subnet: IPv4Network, forwardRules: Bool) -> String {
        let n = network.description
        var script = """
            add table ip flannel
            delete table ip flannel
            table ip flannel {
              chain FLANNEL_POSTRTG {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr \(n) ip daddr \(n) return
                ip saddr \(n) ip daddr != 224.0.0.0/4 masquerade
                ip saddr != \(n) ip daddr \(subnet) return
                ip saddr != \(n) ip daddr \(n) masquerade
              }

            """
        if forwardRules {
            script += """
                  chain FLANNEL_FWD {
                    type filter hook forward priority filter; policy accept;
                    ip saddr \(n) accept
                    ip daddr \(n) accept
                  }

                """
        }
        return script + "}\n"
    }
}
