/// One entry of the multi-call table: a name the binary answers to, its aliases, a
/// one-line summary and the entry point.
///
/// The entry point receives the argument vector as C's `main` does, argv[0] first (the
/// link's path as invoked, or the applet name for `coreos <applet>`), so messages can be
/// prefixed the way getopt prefixes them, and returns the process exit status. It writes through ``StandardStreams`` so that
/// tests can run it in-process and read what it printed.
public struct Applet: Sendable {
    public typealias EntryPoint = @Sendable (_ argv: [String], _ io: StandardStreams) async -> Int32

    /// The canonical name (`etcdctl`), used by `coreos <name>` and for the install link.
    public var name: String
    /// Further names that reach the same entry point (`fleet` for `fleetd`).
    public var aliases: [String]
    public var summary: String
    public var run: EntryPoint

    public init(_ name: String, aliases: [String] = [], summary: String, run: @escaping EntryPoint) {
        self.name = name
        self.aliases = aliases
        self.summary = summary
        self.run = run
    }

    /// Every name this applet answers to, canonical first.
    public var names: [String] { [name] + aliases }
}

/// Process exit statuses shared by every applet.
public enum ExitStatus {
    public static let success: Int32 = 0
    public static let failure: Int32 = 1
    /// A usage error: unknown option, missing operand, unknown applet.
    public static let usage: Int32 = 2
}
