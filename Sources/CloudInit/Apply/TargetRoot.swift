import Glibc
import Platform

/// The machine a plan is applied to: a directory standing for `/` (the real `/` on a
/// node, a temporary directory in tests). Every path the plan names is under it.
public struct TargetRoot: Sendable {
    public var root: String

    /// `root` made absolute (the shadow tools chroot into it and insist on that).
    public init(_ root: String) {
        var absolute = root
        if let resolved = realpath(root, nil) {
            absolute = String(cString: resolved)
            free(resolved)
        } else if !root.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
            if getcwd(&buffer, buffer.count) != nil {
                absolute = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + root
            }
        }
        absolute = PathText.clean(absolute)
        self.root = absolute
    }

    public var isLiveSystem: Bool { root == "/" }

    /// `path` (absolute on the target) as a path on this machine.
    public func hostPath(_ path: String) -> String { isLiveSystem ? path : root + path }

    public func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        FileSystem.contents(atPath: hostPath(path), limit: limit)
    }

    /// The machine's name as the target knows it: `/etc/hostname`, else (live) the kernel's.
    public var currentHostname: String {
        if let text = read("/etc/hostname").map({ String(decoding: $0, as: UTF8.self).trimmingSpaces }), !text.isEmpty {
            return text
        }
        var buffer = [CChar](repeating: 0, count: 256)
        guard isLiveSystem, gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A user of the target's `/etc/passwd`.
    public struct Account: Sendable, Hashable {
        public var name: String
        public var uid: UInt32
        public var gid: UInt32
        public var home: String
    }

    public func account(named name: String) -> Account? {
        for fields in colonFile("/etc/passwd") where fields.count >= 6 && fields[0] == name {
            guard let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { return nil }
            return Account(name: name, uid: uid, gid: gid, home: fields[5])
        }
        return nil
    }

    public func groupID(named name: String) -> UInt32? {
        if let number = UInt32(name) { return number }
        return colonFile("/etc/group").first { $0.count >= 3 && $0[0] == name }.flatMap { UInt32($0[2]) }
    }

    func colonFile(_ path: String) -> [[String]] {
        guard let bytes = read(path) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map {
            $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// `user`, `user:group`, `user.group` or `:group` to ids (nil parts: unchanged).
    public func owner(_ text: String) throws(ProvisioningError) -> (uid: UInt32?, gid: UInt32?) {
        guard !text.isEmpty else { return (nil, nil) }
        let separator = text.firstIndex(of: ":") ?? text.firstIndex(of: ".")
        let userPart = separator.map { String(text[..<$0]) } ?? text
        let groupPart = separator.map { String(text[text.index(after: $0)...]) }
        var uid: UInt32?
        var gid: UInt32?
        if !userPart.isEmpty {
            if let number = UInt32(userPart) {
                uid = number
            } else if let account = account(named: userPart) {
                uid = account.uid
                if groupPart?.isEmpty == true { gid = account.gid }
            } else {
                throw ProvisioningError("unknown user \"\(userPart)\" in owner \"\(text)\"")
            }
        }
        if let groupPart, !groupPart.isEmpty {
            guard let number = groupID(named: groupPart) else {
                throw ProvisioningError("unknown group \"\(groupPart)\" in owner \"\(text)\"")
            }
            gid = number
        }
        return (uid, gid)
    }
}
