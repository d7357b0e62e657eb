/// File-system path predicates with systemd's definitions (path-util), for callers that
/// explain why a path was refused.
public enum PathChecks {
    /// Non-empty, shorter than PATH_MAX, every component at most NAME_MAX bytes.
    public static func isValid(_ path: String) -> Bool { PathSyntax.isValid(path) }
    public static func isAbsolute(_ path: String) -> Bool { PathSyntax.isAbsolute(path) }
    /// Valid, without `.`/`..` components or `//`.
    public static func isNormalized(_ path: String) -> Bool { PathSyntax.isNormalized(path) }
}
