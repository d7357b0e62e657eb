import Foundation
import Glibc
import Platform

/// Keys trusted to sign ACIs, in rkt's layout under the store: `trustedkeys/root.d/<fingerprint>`
/// (any image) and `trustedkeys/prefix.d/<image name prefix>/<fingerprint>` (images whose
/// name starts with that prefix, by path components). Signatures are checked with gpgv
/// against a keyring made for the one check, in a private GnuPG home, so the user's own
/// keyrings are neither read nor changed.
public struct TrustStore: Sendable {
    public let directory: String

    public init(storeDirectory: String) {
        directory = storeDirectory + "/trustedkeys"
    }

    /// The fingerprint of the (first) public key in `keyFile`. gpg runs with
    /// `--no-autostart`: public keys need no agent, and one started for a throwaway home
    /// would outlive the command.
    public static func fingerprint(of keyFile: String) throws(RuntimeError) -> String {
        let home = try temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        guard let outcome = ChildProcess.run(
            ["gpg", "--homedir", home, "--batch", "--no-autostart", "--with-colons", "--import-options", "show-only", "--import", keyFile])
        else { throw RuntimeError("cannot run gpg (package gnupg)") }
        guard outcome.status == 0,
            let line = outcome.output.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") }),
            let fingerprint = line.split(separator: ":", omittingEmptySubsequences: false).dropFirst(9).first, !fingerprint.isEmpty
        else { throw RuntimeError("\(keyFile) holds no OpenPGP public key: \(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return String(fingerprint)
    }

    /// Trusts `keyFile` for images named under `prefix` (nil: every image). Returns where
    /// the key was kept.
    public func add(keyFile: String, prefix: String?) throws(RuntimeError) -> String {
        let fingerprint = try Self.fingerprint(of: keyFile)
        let target: String
        if let prefix {
            guard !prefix.isEmpty, !prefix.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw RuntimeError("invalid prefix \(prefix)")
            }
            target = directory + "/prefix.d/" + prefix.split(separator: "/").joined(separator: "/")
        } else {
            target = directory + "/root.d"
        }
        try ImageStore.makeDirectories(target)
        guard let key = FileManager.default.contents(atPath: keyFile) else { throw RuntimeError("cannot read \(keyFile)") }
        let path = target + "/" + fingerprint
        guard FileManager.default.createFile(atPath: path, contents: key) else { throw RuntimeError("cannot write \(path)") }
        return path
    }

    /// The key files that may sign an image called `name`.
    public func keys(for name: String) -> [String] {
        var files = FileSystem.entryNames(inDirectory: directory + "/root.d").sorted().map { directory + "/root.d/" + $0 }
        var prefix = directory + "/prefix.d"
        for component in name.split(separator: "/") {
            prefix += "/" + component
            for entry in FileSystem.entryNames(inDirectory: prefix).sorted() where FileSystem.entryType(atPath: prefix + "/" + entry) == .regular {
                files.append(prefix + "/" + entry)
            }
        }
        return files
    }

    /// Checks the detached signature `signature` of `file` (an image called `name`).
    public func verify(file: String, signature: String, name: String) throws(RuntimeError) {
        let keys = keys(for: name)
        guard !keys.isEmpty else {
            throw RuntimeError("no trusted key for \(name); add one with `trust --prefix=\(name) KEYFILE` (or skip with --insecure-options=image)")
        }
        let home = try Self.temporaryHome()
        defer { try? FileManager.default.removeItem(atPath: home) }
        let keyring = home + "/trusted.gpg"
        guard let imported = ChildProcess.run(["gpg", "--homedir", home, "--batch", "--no-autostart", "--no-default-keyring", "--keyring", keyring, "--import"] + keys),
            imported.status == 0
        else { throw RuntimeError("cannot build a keyring from the trusted keys of \(name)") }
        guard let checked = ChildProcess.run(["gpgv", "--homedir", home, "--keyring", keyring, signature, file]) else {
            throw RuntimeError("cannot run gpgv (package gpgv)")
        }
        guard checked.status == 0 else {
            let said = checked.output.split(separator: "\n").filter { $0.hasPrefix("gpgv:") }.last.map(String.init) ?? "bad signature"
            throw RuntimeError("signature verification of \(file) failed: \(said)")
        }
    }

    static func temporaryHome() throws(RuntimeError) -> String {
        var template = Array((NSTemporaryDirectory() + "coreos-gnupg-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw RuntimeError("mkdtemp: \(String(cString: strerror(errno)))") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
