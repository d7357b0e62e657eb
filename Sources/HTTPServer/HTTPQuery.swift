import Foundation

/// A URL query (or an `application/x-www-form-urlencoded` body) as Go's `url.ParseQuery`
/// reads it: name-value pairs in order, `+` as a space, percent escapes decoded (text that
/// does not decode is kept as it is).
public enum HTTPQuery {
    public static func pairs(_ query: some StringProtocol) -> [(name: String, value: String)] {
        query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// The pairs of the query part of a request target (`/path?a=1&b=2`).
    public static func pairs(inTarget target: String) -> [(name: String, value: String)] {
        guard let question = target.firstIndex(of: "?") else { return [] }
        return pairs(target[target.index(after: question)...])
    }

    private static func decode(_ text: some StringProtocol) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
