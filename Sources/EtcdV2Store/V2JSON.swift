import GoFormat

/// v2 responses as etcd 3.4 writes them: Go's `encoding/json` field order and escaping
/// (`<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes), one object and a newline.
public enum V2JSON {
    public static func event(_ event: V2Event) -> String {
        var text = "{\"action\":\"\(event.action.rawValue)\",\"node\":"
        node(event.node, into: &text)
        if let previous = event.prevNode {
            text += ",\"prevNode\":"
            node(previous, into: &text)
        }
        return text + "}\n"
    }

    public static func error(_ error: V2Error) -> String {
        "{\"errorCode\":\(error.code.rawValue),\"message\":\(quoted(error.code.message)),\"cause\":\(quoted(error.cause)),\"index\":\(error.index)}\n"
    }

    /// etcd's `NodeExtern`: key, value, dir, expiration, ttl, nodes, modifiedIndex,
    /// createdIndex; empty fields left out (a file's value always shown).
    static func node(_ node: V2NodeView, into text: inout String) {
        var fields: [String] = []
        if let key = node.key { fields.append("\"key\":" + quoted(key)) }
        if let value = node.value { fields.append("\"value\":" + quoted(value)) }
        if node.isDirectory { fields.append("\"dir\":true") }
        if let expiration = node.expiration { fields.append("\"expiration\":" + quoted(rfc3339(expiration))) }
        if let ttl = node.ttl, ttl != 0 { fields.append("\"ttl\":\(ttl)") }
        if let nodes = node.nodes, !nodes.isEmpty {
            var listed = "\"nodes\":["
            for (position, child) in nodes.enumerated() {
                if position > 0 { listed += "," }
                V2JSON.node(child, into: &listed)
            }
            fields.append(listed + "]")
        }
        if node.modifiedIndex != 0 { fields.append("\"modifiedIndex\":\(node.modifiedIndex)") }
        if node.createdIndex != 0 { fields.append("\"createdIndex\":\(node.createdIndex)") }
        text += "{" + fields.joined(separator: ",") + "}"
    }

    /// A JSON string as Go quotes it.
    public static func quoted(_ string: String) -> String { GoJSONString.quote(string) }

    /// Go's RFC3339Nano in UTC for a time in milliseconds (trailing zeros of the fraction
    /// dropped, as Go drops them).
    public static func rfc3339(_ milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let fraction = milliseconds - seconds * 1000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        var text = "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
        if fraction > 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 3 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }
}
