import Foundation
import Raft

/// Bugs injected on purpose, so the robustness suite (Tests/Robustness) can show that its
/// checks fail when the server is wrong: `COREOS_INJECT_BUGS=name[,name...]`.
///
/// Only debug builds read the variable; a release build has no way to turn them on.
struct InjectedBugs: Sendable, Equatable {
    /// Linearizable reads are answered from the member's own state at once, without a
    /// ReadIndex round (so a deposed or cut-off member serves stale data).
    var readWithoutReadIndex = false
    /// The leader commits an entry once it has it itself (see `RaftConfiguration.InjectedBugs`).
    var commitWithoutQuorum = false

    static let variable = "COREOS_INJECT_BUGS"
    static let names = ["read-without-readindex", "commit-without-quorum"]

    /// The bugs the environment asks for; an unknown name is an error, so a typo in a
    /// test cannot silently run the correct server.
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> InjectedBugs
    {
        var bugs = InjectedBugs()
        #if DEBUG
        guard let list = environment[variable], !list.isEmpty else { return bugs }
        for name in list.split(separator: ",").map(String.init) {
            switch name {
            case "read-without-readindex": bugs.readWithoutReadIndex = true
            case "commit-without-quorum": bugs.commitWithoutQuorum = true
            default:
                throw EtcdServerError("\(variable): unknown bug \"\(name)\" (known: \(names.joined(separator: ", ")))")
            }
        }
        FileHandle.standardError.write(Data("etcd: WARNING: injected bugs on purpose: \(list)\n".utf8))
        #endif
        return bugs
    }
}
