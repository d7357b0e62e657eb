/// The node's services as systemd units, for hosts where systemd is PID 1 and should
/// supervise them instead of `coreos node`: `etcd.service`, `flanneld.service`,
/// `fleet.service`, each with its settings in a `20-cloudinit.conf` drop-in (the name
/// coreos-cloudinit gave them), ordered as the node starts them.
public enum SystemdUnits {
    /// File paths relative to the unit directory, and their contents.
    public static func files(for plan: NodePlan, binary: String) -> [(path: String, content: String)] {
        var files: [(String, String)] = []
        for service in plan.services {
            let unit = unitName(service.name)
            var text = "# Written by `coreos node --systemd-units`.\n[Unit]\nDescription=\(description(service.name))\n"
            switch service.name {
            case "etcd":
                text += "After=network-online.target\nWants=network-online.target\n"
            case "flannel":
                text += "After=etcd.service network-online.target\nWants=etcd.service network-online.target\nBefore=docker.service\n"
            default:
                let before = plan.services.prefix { $0.name != service.name }.map { unitName($0.name) }
                text += "After=\(before.joined(separator: " "))\nWants=\(before.joined(separator: " "))\n"
            }
            text += "\n[Service]\n"
            // flanneld says READY=1 once its subnet.env exists; the others are ready when started.
            text += service.name == "flannel" ? "Type=notify\n" : "Type=simple\n"
            for command in service.preparation {
                text += "ExecStartPre=-\(binary) \(command.map(quoted).joined(separator: " "))\n"
            }
            text += "ExecStart=\(binary) \(service.arguments.joined(separator: " "))\n"
            text += "Restart=always\nRestartSec=5s\nLimitNOFILE=40000\n\n[Install]\nWantedBy=multi-user.target\n"
            files.append((unit, text))
            if !service.environment.isEmpty {
                var dropIn = "[Service]\n"
                for (name, value) in service.environment.sorted(by: { $0.key < $1.key }) {
                    dropIn += "Environment=\(quoted("\(name)=\(value)"))\n"
                }
                files.append((unit + ".d/20-cloudinit.conf", dropIn))
            }
        }
        return files
    }

    static func unitName(_ service: String) -> String { service == "flannel" ? "flanneld.service" : service + ".service" }

    static func description(_ service: String) -> String {
        switch service {
        case "etcd": "etcd key-value store (coreos etcd)"
        case "flannel": "flannel overlay network (coreos flannel)"
        default: "fleet cluster scheduler (coreos fleet)"
        }
    }

    /// systemd's quoting: words with spaces, quotes or backslashes in double quotes, with
    /// `\` and `"` escaped; `%` doubled (a specifier otherwise).
    static func quoted(_ word: String) -> String {
        let escaped = word.replacing("%", with: "%%")
        guard escaped.contains(where: { $0 == " " || $0 == "\"" || $0 == "\\" || $0 == "'" }) else { return escaped }
        return "\"" + escaped.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
    }
}
