public import YAML

/// A cloud-config read into values: what apply works from. Keys of the wrong type read as
/// absent (the validator has reported them), strings keep their source text.
public struct CloudConfig: Sendable, Hashable {
    public struct User: Sendable, Hashable {
        public var name = ""
        public var passwordHash = ""
        public var sshAuthorizedKeys: [String] = []
        public var gecos = ""
        public var homeDirectory = ""
        public var noCreateHome = false
        public var primaryGroup = ""
        public var groups: [String] = []
        public var noUserGroup = false
        public var system = false
        public var noLogInit = false
        public var shell = ""
    }

    public struct File: Sendable, Hashable {
        public var path = ""
        public var content = ""
        public var encoding = ""
        public var owner = ""
        public var permissions = ""
        /// Where the entry was written, for errors.
        public var line = 0
    }

    public struct DropIn: Sendable, Hashable {
        public var name = ""
        public var content = ""
    }

    public struct Unit: Sendable, Hashable {
        public var name = ""
        public var content = ""
        public var enable = false
        public var runtime = false
        public var mask = false
        public var command = ""
        public var dropIns: [DropIn] = []
        public var line = 0
    }

    /// A service section (`etcd2`, `fleet`, …) as its environment: the variables of the
    /// keys that are set, in the schema's declared order, values printed as Go's `%v`.
    public struct Settings: Sendable, Hashable {
        public var variables: [Variable] = []
        public var isEmpty: Bool { variables.isEmpty }

        public struct Variable: Sendable, Hashable {
            public var key: String
            public var name: String
            public var value: String
        }

        public func value(of key: String) -> String? { variables.first { $0.key == key }?.value }
    }

    public var hostname = ""
    public var sshAuthorizedKeys: [String] = []
    public var users: [User] = []
    public var writeFiles: [File] = []
    public var manageEtcHosts = ""
    public var etcd = Settings()
    public var etcd2 = Settings()
    public var fleet = Settings()
    public var flannel = Settings()
    public var locksmith = Settings()
    public var oem = Settings()
    public var update = Settings()
    public var units: [Unit] = []

    public init() {}

    /// Reads a parsed document (nil or null: the empty config).
    public init(document: YAMLNode?) {
        guard let document, case .mapping = document.kind else { return }
        let root = Reader(document)
        hostname = root.string("hostname")
        sshAuthorizedKeys = root.strings("ssh_authorized_keys")
        manageEtcHosts = root.string("manage_etc_hosts")
        users = root.list("users").map { item in
            var user = User()
            user.name = item.string("name")
            user.passwordHash = item.string("passwd")
            user.sshAuthorizedKeys = item.strings("ssh_authorized_keys")
            user.gecos = item.string("gecos")
            user.homeDirectory = item.string("homedir")
            user.noCreateHome = item.bool("no_create_home")
            user.primaryGroup = item.string("primary_group")
            user.groups = item.strings("groups")
            user.noUserGroup = item.bool("no_user_group")
            user.system = item.bool("system")
            user.noLogInit = item.bool("no_log_init")
            user.shell = item.string("shell")
            return user
        }
        writeFiles = root.list("write_files").map { item in
            File(
                path: item.string("path"), content: item.string("content"), encoding: item.string("encoding"),
                owner: item.string("owner"), permissions: item.string("permissions"), line: item.node.line)
        }
        let coreos = root.section("coreos")
        etcd = coreos.settings("etcd", CloudConfigSchema.etcd)
        etcd2 = coreos.settings("etcd2", CloudConfigSchema.etcd2)
        fleet = coreos.settings("fleet", CloudConfigSchema.fleet)
        flannel = coreos.settings("flannel", CloudConfigSchema.flannel)
        locksmith = coreos.settings("locksmith", CloudConfigSchema.locksmith)
        oem = coreos.settings("oem", CloudConfigSchema.oem)
        update = coreos.settings("update", CloudConfigSchema.update)
        units = coreos.list("units").map { item in
            Unit(
                name: item.string("name"), content: item.string("content"), enable: item.bool("enable"),
                runtime: item.bool("runtime"), mask: item.bool("mask"), command: item.string("command"),
                dropIns: item.list("drop_ins").map { DropIn(name: $0.string("name"), content: $0.string("content")) },
                line: item.node.line)
        }
    }
}

/// Typed reads from a mapping node, forgiving as go-yaml's decoding into zero values.
struct Reader {
    let node: YAMLNode

    init(_ node: YAMLNode) { self.node = node }

    func string(_ key: String) -> String {
        guard let value = node.child(key), value.resolved != nil, value.resolved != .null else { return "" }
        return value.text ?? ""
    }

    func bool(_ key: String) -> Bool {
        if case .bool(let value)? = node.child(key)?.resolved { return value }
        return false
    }

    func strings(_ key: String) -> [String] {
        guard case .sequence(let items)? = node.child(key)?.kind else { return [] }
        return items.compactMap(\.text)
    }

    func list(_ key: String) -> [Reader] {
        guard case .sequence(let items)? = node.child(key)?.kind else { return [] }
        return items.compactMap { item in
            guard case .mapping = item.kind else { return nil }
            return Reader(item)
        }
    }

    func section(_ key: String) -> Reader {
        guard let value = node.child(key), case .mapping = value.kind else { return Reader(YAMLNode(kind: .mapping([]), line: 0, column: 0)) }
        return Reader(value)
    }

    func settings(_ key: String, _ schema: Section) -> CloudConfig.Settings {
        let section = section(key)
        var settings = CloudConfig.Settings()
        for field in schema.fields {
            guard let environment = field.environment, let value = section.node.child(field.name),
                let printed = Self.goValue(value, field.type)
            else { continue }
            settings.variables.append(.init(key: field.name, name: environment, value: printed))
        }
        return settings
    }

    /// The value as Go's `%v` prints it, nil for a zero value (omitted, as upstream) or a
    /// value of the wrong type.
    static func goValue(_ node: YAMLNode, _ type: ValueType) -> String? {
        switch (type, node.resolved) {
        case (.string, .some(let resolved)) where resolved != .null:
            guard let text = node.text, !text.isEmpty else { return nil }
            return text
        case (.bool, .bool(true)?): return "true"
        case (.int, .int(let value)?) where value != 0: return String(value)
        case (.float, .int(let value)?) where value != 0: return String(value)
        case (.float, .float(let value)?) where value != 0:
            if value == value.rounded(), abs(value) < 1e21 { return String(Int64(value)) }
            return "\(value)"
        default: return nil
        }
    }
}
