import CDynamicLibraries
import CYAML

/// A YAML node with where it was written (1-based line and column), built from libyaml's
/// events. Scalars keep their source text: resolving `0644`, `off` or `1.10` is the
/// reader's business (cloud-config wants most strings as written).
public struct YAMLNode: Sendable, Hashable {
    public enum Style: Sendable, Hashable { case plain, singleQuoted, doubleQuoted, literal, folded }

    public indirect enum Kind: Sendable, Hashable {
        case scalar(String, style: Style, tag: String?)
        case sequence([YAMLNode])
        /// Pairs in document order; a key written twice keeps both (readers take the last).
        case mapping([Pair])
    }

    public struct Pair: Sendable, Hashable {
        public var key: YAMLNode
        public var value: YAMLNode
    }

    public var kind: Kind
    public var line: Int
    public var column: Int

    public init(kind: Kind, line: Int, column: Int) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    /// A plain scalar that YAML 1.1 reads as null (`~`, `null`, empty).
    public var isNull: Bool {
        if case .scalar(let text, let style, let tag) = kind, style == .plain, tag == nil {
            return ["", "~", "null", "Null", "NULL"].contains(text)
        }
        return false
    }

    /// The value of the last pair whose key is the scalar `key`.
    public subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = kind else { return nil }
        return pairs.last { if case .scalar(let text, _, _) = $0.key.kind { return text == key } else { return false } }?.value
    }
}

/// Why a document was refused, and where.
public struct YAMLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libyaml's problem (`did not find expected key`) or the limit that was hit.
    public var message: String
    /// What libyaml was doing (`while parsing a block mapping`), when it says.
    public var context: String? = nil
    /// 1-based; 0 when the problem has no place (the input as a whole).
    public var line: Int
    public var column: Int

    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// Bounds that keep hostile input cheap: checked while events arrive, so parsing stops at
/// the first violation (libyaml slows down super-linearly on deep flow nesting, and an
/// alias fan-out grows exponentially if expanded blindly).
public struct YAMLLimits: Sendable, Hashable {
    public var maxInputBytes = 32 << 20
    public var maxDepth = 512
    /// Nodes that aliases may add, all aliases together.
    public var maxAliasNodes = 100_000
    /// Scalar bytes that aliases may add, all aliases together.
    public var maxAliasBytes = 16 << 20

    public init() {}
}

/// The first document of a YAML stream as a node tree (nil for an empty stream), through
/// libyaml's event parser.
public enum YAMLParser {
    public static func parse(_ input: [UInt8], limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> YAMLNode? {
        guard input.count <= limits.maxInputBytes else {
            throw YAMLError(message: "input is \(input.count) bytes, more than the limit of \(limits.maxInputBytes)", line: 0, column: 0)
        }
        var builder = TreeBuilder(limits: limits)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw YAMLError(message: "cannot initialize libyaml", line: 0, column: 0) }
        defer { yaml_parser_delete(&parser) }
        return try input.withUnsafeBufferPointer { (buffer) throws(YAMLError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { throw Self.error(of: parser, input: buffer) }
                defer { yaml_event_delete(&event) }
                if let document = try builder.take(event) { return document }
                if event.type == YAML_STREAM_END_EVENT { return builder.document }
            }
        }
    }

    static func error(of parser: yaml_parser_t, input: UnsafeBufferPointer<UInt8>) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
        if parser.error == YAML_READER_ERROR {
            // Encoding problems carry a byte offset, not a mark: count lines up to it.
            let offset = min(parser.problem_offset, input.count)
            let before = input[..<offset]
            let line = before.count { $0 == UInt8(ascii: "\n") } + 1
            let column = offset - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
            return YAMLError(message: problem, line: line, column: column)
        }
        let mark = parser.problem_mark
        return YAMLError(
            message: problem, context: parser.context.map { String(cString: $0) }, line: Int(mark.line) + 1,
            column: Int(mark.column) + 1)
    }
}

/// Events to nodes: a stack of open collections, anchors by name, and the alias budget.
struct TreeBuilder {
    let limits: YAMLLimits
    /// An open collection. Children collect here and become the node at its end event:
    /// appending to an array inside an enum payload would copy it each time (quadratic).
    private struct OpenCollection {
        var isSequence: Bool
        var line: Int
        var column: Int
        var anchor: String?
        var items: [YAMLNode] = []
        var pairs: [YAMLNode.Pair] = []
        var pendingKey: YAMLNode?
        var size = 1
        var bytes = 0
    }

    private var stack: [OpenCollection] = []
    private var anchors: [String: (node: YAMLNode, size: Int, bytes: Int)] = [:]
    private var aliasNodes = 0
    private var aliasBytes = 0
    private(set) var document: YAMLNode?
    private var documentDone = false

    init(limits: YAMLLimits) { self.limits = limits }

    /// Feeds one event; returns the document when its end arrives.
    mutating func take(_ event: yaml_event_t) throws(YAMLError) -> YAMLNode? {
        let line = Int(event.start_mark.line) + 1
        let column = Int(event.start_mark.column) + 1
        switch event.type {
        case YAML_DOCUMENT_END_EVENT:
            documentDone = true
            return document
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let style: YAMLNode.Style
            switch scalar.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            let node = YAMLNode(kind: .scalar(text, style: style, tag: Self.string(scalar.tag)), line: line, column: column)
            add(node, anchor: Self.string(scalar.anchor), size: 1, bytes: scalar.length)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let anchored = anchors[name] else {
                throw YAMLError(message: "found undefined alias \"\(name)\"", line: line, column: column)
            }
            aliasNodes += anchored.size
            aliasBytes += anchored.bytes
            if aliasNodes > limits.maxAliasNodes || aliasBytes > limits.maxAliasBytes {
                throw YAMLError(
                    message: "aliases expand to more than \(limits.maxAliasNodes) nodes or \(limits.maxAliasBytes) bytes",
                    line: line, column: column)
            }
            var copy = anchored.node
            copy.line = line
            copy.column = column
            add(copy, anchor: nil, size: anchored.size, bytes: anchored.bytes)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            guard stack.count < limits.maxDepth else {
                throw YAMLError(message: "nesting deeper than \(limits.maxDepth) levels", line: line, column: column)
            }
            let isSequence = event.type == YAML_SEQUENCE_START_EVENT
            let anchor = Self.string(isSequence ? event.data.sequence_start.anchor : event.data.mapping_start.anchor)
            stack.append(OpenCollection(isSequence: isSequence, line: line, column: column, anchor: anchor))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let open = stack.popLast() else { break }
            let kind: YAMLNode.Kind = open.isSequence ? .sequence(open.items) : .mapping(Self.merged(open.pairs))
            add(YAMLNode(kind: kind, line: open.line, column: open.column), anchor: open.anchor, size: open.size, bytes: open.bytes)
        default:
            break
        }
        return nil
    }

    private mutating func add(_ node: YAMLNode, anchor: String?, size: Int, bytes: Int) {
        if let anchor { anchors[anchor] = (node, size, bytes) }
        guard !stack.isEmpty else {
            if document == nil && !documentDone { document = node }
            return
        }
        let top = stack.count - 1
        stack[top].size += size
        stack[top].bytes += bytes
        if stack[top].isSequence {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            stack[top].pairs.append(YAMLNode.Pair(key: key, value: node))
            stack[top].pendingKey = nil
        } else {
            stack[top].pendingKey = node
        }
    }

    /// `<<` merge keys: the merged mappings' pairs come first, so explicit keys (later,
    /// and readers take the last) win.
    static func merged(_ pairs: [YAMLNode.Pair]) -> [YAMLNode.Pair] {
        guard pairs.contains(where: isMergeKey) else { return pairs }
        var result: [YAMLNode.Pair] = []
        for pair in pairs where isMergeKey(pair) {
            switch pair.value.kind {
            case .mapping(let inner): result += inner
            case .sequence(let items):
                // Earlier mappings in the list win over later ones.
                for item in items.reversed() { if case .mapping(let inner) = item.kind { result += inner } }
            case .scalar: break
            }
        }
        return result + pairs.filter { !isMergeKey($0) }
    }

    static func isMergeKey(_ pair: YAMLNode.Pair) -> Bool {
        if case .scalar("<<", .plain, _) = pair.key.kind { return true }
        return false
    }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafePointer($0)) }
    }
}
