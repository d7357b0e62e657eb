import CLI
import EtcdAPI
import EtcdClient
import Glibc
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// auth, user and role: etcdctl 3.4's commands over the Auth service.
enum EtcdctlAuthCommands {
    static var all: [EtcdctlCommandSpec] {
        [
            EtcdctlCommandSpec(["auth", "enable"], use: "enable", short: "Enables authentication", run: authEnable),
            EtcdctlCommandSpec(["auth", "disable"], use: "disable", short: "Disables authentication", run: authDisable),
            EtcdctlCommandSpec(
                ["user", "add"], use: "add <user name or user:password> [options]", short: "Adds a new user",
                flags: [
                    PFlag("interactive", .bool, default: "true", "Read password from stdin instead of interactive terminal"),
                    PFlag("new-user-password", .string, default: "", "Supply password from the command line flag"),
                    PFlag("no-password", .bool, default: "false", "Create a user without password (CN based auth only)"),
                ], run: userAdd),
            EtcdctlCommandSpec(
                ["user", "get"], use: "get <user name> [options]", short: "Gets detailed information of a user",
                flags: [PFlag("detail", .bool, default: "false", "Show permissions of roles granted to the user")],
                run: userGet),
            EtcdctlCommandSpec(["user", "list"], use: "list", short: "Lists all users", run: userList),
            EtcdctlCommandSpec(["user", "delete"], use: "delete <user name>", short: "Deletes a user", run: userDelete),
            EtcdctlCommandSpec(
                ["user", "passwd"], use: "passwd <user name> [options]", short: "Changes password of user",
                flags: [
                    PFlag(
                        "interactive", .bool, default: "true",
                        "If true, read password from stdin instead of interactive terminal")
                ], run: userPasswd),
            EtcdctlCommandSpec(
                ["user", "grant-role"], use: "grant-role <user name> <role name>", short: "Grants a role to a user",
                run: userGrantRole),
            EtcdctlCommandSpec(
                ["user", "revoke-role"], use: "revoke-role <user name> <role name>", short: "Revokes a role from a user",
                run: userRevokeRole),
            EtcdctlCommandSpec(["role", "add"], use: "add <role name>", short: "Adds a new role", run: roleAdd),
            EtcdctlCommandSpec(
                ["role", "get"], use: "get <role name>", short: "Gets detailed information of a role", run: roleGet),
            EtcdctlCommandSpec(["role", "list"], use: "list", short: "Lists all roles", run: roleList),
            EtcdctlCommandSpec(["role", "delete"], use: "delete <role name>", short: "Deletes a role", run: roleDelete),
            EtcdctlCommandSpec(
                ["role", "grant-permission"], use: "grant-permission [options] <role name> <permission type> <key> [endkey]",
                short: "Grants a key to a role",
                flags: [
                    PFlag(
                        "from-key", .bool, default: "false",
                        "grant a permission of keys that are greater than or equal to the given key using byte compare"),
                    PFlag("prefix", .bool, default: "false", "grant a prefix permission"),
                ], run: roleGrantPermission),
            EtcdctlCommandSpec(
                ["role", "revoke-permission"], use: "revoke-permission <role name> <key> [endkey]",
                short: "Revokes a key from a role",
                flags: [
                    PFlag(
                        "from-key", .bool, default: "false",
                        "revoke a permission of keys that are greater than or equal to the given key using byte compare"),
                    PFlag("prefix", .bool, default: "false", "revoke a prefix permission"),
                ], run: roleRevokePermission),
        ]
    }

    static func plain(_ invocation: EtcdctlInvocation, _ line: String) {
        if invocation.printer.format == .simple { invocation.io.output.line(line) }
    }

    // MARK: auth

    @Sendable static func authEnable(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.isEmpty else { throw .badArgs("auth enable command does not accept any arguments") }
        let io = invocation.io
        let endpoints = invocation.global.endpoints
        try await invocation.withClient { client in
            while true {
                do {
                    _ = try await client.authEnable()
                    return
                } catch let error as EtcdError where error.message == "etcdserver: root user does not have root role" {
                    _ = EtcdCallLog.wrap(error, endpoints: endpoints, io: io)
                    _ = try? await client.roleAdd("root")
                    _ = try await client.userGrantRole(user: "root", role: "root")
                }
            }
        }
        invocation.io.output.line("Authentication Enabled")
    }

    @Sendable static func authDisable(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.isEmpty else { throw .badArgs("auth disable command does not accept any arguments") }
        _ = try await invocation.withClient { try await $0.authDisable() }
        invocation.io.output.line("Authentication Disabled")
    }

    // MARK: user

    /// A password from the terminal (echo off, asked twice when `confirm`) or, without a
    /// terminal or with `--interactive=false`, one line of standard input.
    static func readPassword(prompt: String, confirm: String?, interactive: Bool) throws(EtcdctlFailure) -> String {
        guard interactive, isatty(0) == 1 else {
            let line = StandardInput.readLine()
            return String(line.prefix { $0 != " " && $0 != "\t" })
        }
        let first = TerminalPassword.read(prompt: prompt)
        if let confirm {
            let second = TerminalPassword.read(prompt: confirm)
            if first != second { throw EtcdctlFailure(EtcdctlExit.badArgs, "given passwords are different.") }
        }
        return first
    }

    @Sendable static func userAdd(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("user add command requires user name as its argument") }
        let argument = invocation.arguments[0]
        let noPassword = invocation.flags.bool("no-password")
        var user = argument
        var password = ""
        if let fromFlag = invocation.flags.string("new-user-password"), !fromFlag.isEmpty {
            password = fromFlag
        } else if let colon = argument.firstIndex(of: ":") {
            user = String(argument[..<colon])
            password = String(argument[argument.index(after: colon)...])
            if user.isEmpty { throw .badArgs("empty user name is not allowed") }
        } else if !noPassword {
            password = try readPassword(
                prompt: "Password of \(user): ", confirm: "Type password of \(user) again for confirmation: ",
                interactive: invocation.flags.string("interactive").flatMap(GoValues.parseBool) ?? true)
        }
        let name = user
        let secret = password
        _ = try await invocation.withClient { try await $0.userAdd(name, password: secret, noPassword: noPassword) }
        plain(invocation, "User \(name) created")
    }

    @Sendable static func userGet(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("user get command requires user name as its argument") }
        let name = invocation.arguments[0]
        let detail = invocation.flags.bool("detail")
        let (response, roles) = try await invocation.withClient { client in
            let response = try await client.userGet(name)
            var roles: [(String, Etcdserverpb_AuthRoleGetResponse)] = []
            if detail { for role in response.roles { roles.append((role, try await client.roleGet(role))) } }
            return (response, roles)
        }
        if invocation.printer.format == .json {
            invocation.io.output.line(GoJSON.encode(response))
            return
        }
        let out = invocation.io.output
        if detail {
            out.line("User: \(name)")
            for (role, permissions) in roles {
                out.line("")
                printRole(role, permissions, out)
            }
            return
        }
        out.write("User: \(name)\nRoles:" + response.roles.map { " \($0)" }.joined() + "\n")
    }

    @Sendable static func userList(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await invocation.withClient { try await $0.userList() }
        if invocation.printer.format == .json { return invocation.io.output.line(GoJSON.encode(response)) }
        for user in response.users { invocation.io.output.line(user) }
    }

    @Sendable static func userDelete(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("user delete command requires user name as its argument") }
        let name = invocation.arguments[0]
        _ = try await invocation.withClient { try await $0.userDelete(name) }
        plain(invocation, "User \(name) deleted")
    }

    @Sendable static func userPasswd(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("user passwd command requires user name as its argument") }
        let name = invocation.arguments[0]
        let password = try readPassword(
            prompt: "Password of \(name): ", confirm: "Type password of \(name) again for confirmation: ",
            interactive: invocation.flags.string("interactive").flatMap(GoValues.parseBool) ?? true)
        _ = try await invocation.withClient { try await $0.userChangePassword(name, password: password) }
        plain(invocation, "Password updated")
    }

    @Sendable static func userGrantRole(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 2 else {
            throw .badArgs("user grant command requires user name and role name as its argument")
        }
        let (user, role) = (invocation.arguments[0], invocation.arguments[1])
        _ = try await invocation.withClient { try await $0.userGrantRole(user: user, role: role) }
        plain(invocation, "Role \(role) is granted to user \(user)")
    }

    @Sendable static func userRevokeRole(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 2 else {
            throw .badArgs("user revoke-role requires user name and role name as its argument")
        }
        let (user, role) = (invocation.arguments[0], invocation.arguments[1])
        _ = try await invocation.withClient { try await $0.userRevokeRole(user: user, role: role) }
        plain(invocation, "Role \(role) is revoked from user \(user)")
    }

    // MARK: role

    @Sendable static func roleAdd(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("role add command requires role name as its argument") }
        let name = invocation.arguments[0]
        _ = try await invocation.withClient { try await $0.roleAdd(name) }
        plain(invocation, "Role \(name) created")
    }

    @Sendable static func roleGet(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("role get command requires role name as its argument") }
        let name = invocation.arguments[0]
        let response = try await invocation.withClient { try await $0.roleGet(name) }
        if invocation.printer.format == .json { return invocation.io.output.line(GoJSON.encode(response)) }
        printRole(name, response, invocation.io.output)
    }

    /// etcdctl's role listing: read and write permissions, ranges as `[key, end)`.
    static func printRole(_ name: String, _ response: Etcdserverpb_AuthRoleGetResponse, _ out: any TextSink) {
        out.line("Role \(name)")
        func render(_ permission: Authpb_Permission) {
            let key = String(decoding: permission.key, as: UTF8.self)
            if permission.rangeEnd.isEmpty {
                out.line("\t\(key)")
                return
            }
            let end = String(decoding: permission.rangeEnd, as: UTF8.self)
            var line = end != "\u{0}" ? "\t[\(key), \(end))" : "\t[\(key), <open ended>"
            if EtcdKeyRange.prefixEnd(of: permission.key) == permission.rangeEnd { line += " (prefix \(key))" }
            out.line(line)
        }
        out.line("KV Read:")
        for permission in response.perm where permission.permType == .read || permission.permType == .readwrite {
            render(permission)
        }
        out.line("KV Write:")
        for permission in response.perm where permission.permType == .write || permission.permType == .readwrite {
            render(permission)
        }
    }

    @Sendable static func roleList(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let response = try await invocation.withClient { try await $0.roleList() }
        if invocation.printer.format == .json { return invocation.io.output.line(GoJSON.encode(response)) }
        for role in response.roles { invocation.io.output.line(role) }
    }

    @Sendable static func roleDelete(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        guard invocation.arguments.count == 1 else { throw .badArgs("role delete command requires role name as its argument") }
        let name = invocation.arguments[0]
        _ = try await invocation.withClient { try await $0.roleDelete(name) }
        plain(invocation, "Role \(name) deleted")
    }

    /// `key [end]` with `--prefix` / `--from-key`, as etcdctl turns them into a range.
    static func permissionRange(_ arguments: ArraySlice<String>, _ flags: PFlagResult) throws(EtcdctlFailure)
        -> (Data, Data)
    {
        let key = Data((arguments.first ?? "").utf8)
        var end = arguments.count > 1 ? Data(arguments[arguments.startIndex + 1].utf8) : Data()
        let prefix = flags.bool("prefix")
        let fromKey = flags.bool("from-key")
        if prefix && fromKey { throw .badArgs("--from-key and --prefix flags are mutually exclusive") }
        if prefix {
            if !end.isEmpty { throw .badArgs("unexpected endkey argument with --prefix") }
            end = key.isEmpty ? Data([0]) : EtcdKeyRange.prefixEnd(of: key)
        }
        if fromKey {
            if !end.isEmpty { throw .badArgs("unexpected endkey argument with --from-key") }
            end = Data([0])
        }
        return (key, end)
    }

    @Sendable static func roleGrantPermission(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let arguments = invocation.arguments
        guard arguments.count >= 3 else {
            throw .badArgs("role grant command requires role name, permission type, and key [endkey] as its argument")
        }
        let types: [String: Authpb_Permission.TypeEnum] = ["READ": .read, "WRITE": .write, "READWRITE": .readwrite]
        guard let type = types[arguments[1].uppercased()] else {
            throw .badArgs("invalid permission type: \(arguments[1])")
        }
        let (key, end) = try permissionRange(arguments[2...], invocation.flags)
        let role = arguments[0]
        let permission = Authpb_Permission.with {
            $0.permType = type
            $0.key = key
            $0.rangeEnd = end
        }
        _ = try await invocation.withClient { try await $0.roleGrantPermission(role, permission) }
        plain(invocation, "Role \(role) updated")
    }

    @Sendable static func roleRevokePermission(_ invocation: EtcdctlInvocation) async throws(EtcdctlFailure) {
        let arguments = invocation.arguments
        guard arguments.count == 2 || arguments.count == 3 else {
            throw .badArgs("role revoke-permission command requires role name and key [endkey] as its argument")
        }
        let (key, end) = try permissionRange(arguments[1...], invocation.flags)
        let role = arguments[0]
        _ = try await invocation.withClient { try await $0.roleRevokePermission(role, key: key, rangeEnd: end) }
        let keyText = String(decoding: key, as: UTF8.self)
        if end.isEmpty {
            plain(invocation, "Permission of key \(keyText) is revoked from role \(role)")
        } else if end != Data([0]) {
            plain(invocation, "Permission of range [\(keyText), \(String(decoding: end, as: UTF8.self))) is revoked from role \(role)")
        } else {
            plain(invocation, "Permission of range [\(keyText), <open ended> is revoked from role \(role)")
        }
    }
}

/// Reading a password from the terminal with echo off.
enum TerminalPassword {
    static func read(prompt: String) -> String {
        FileDescriptorSink(descriptor: 2).write(prompt)
        var original = termios()
        tcgetattr(0, &original)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSANOW, &silent)
        defer {
            tcsetattr(0, TCSANOW, &original)
            FileDescriptorSink(descriptor: 2).write("\n")
        }
        return StandardInput.readLine()
    }
}
