/// A unit file could not be read. Carries the file (when known), line and column (both
/// 1-based; the column counts bytes of the physical line).
public struct UnitFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case invalidUTF8
        case nulByte
        case fileTooLarge(limit: Int)
        case lineTooLong(limit: Int)
        case invalidSectionHeader
        case emptySectionName
        case assignmentOutsideSection
        case missingEquals
        case emptyKey
        case unsupportedDirective(String)
        /// The model holds something the unit-file syntax cannot express.
        case notSerializable(String)
        case io(path: String, errno: Int32)
    }

    public var reason: Reason
    public var file: String?
    public var line: Int
    public var column: Int

    public init(_ reason: Reason, file: String? = nil, line: Int, column: Int) {
        self.reason = reason
        self.file = file
        self.line = line
        self.column = column
    }

    public var message: String {
        switch reason {
        case .invalidUTF8: return "invalid UTF-8"
        case .nulByte: return "NUL byte in unit file"
        case .fileTooLarge(let limit): return "file larger than \(limit) bytes"
        case .lineTooLong(let limit): return "line longer than \(limit) bytes"
        case .invalidSectionHeader: return "invalid section header: expected '[Name]'"
        case .emptySectionName: return "empty section name"
        case .assignmentOutsideSection: return "assignment outside of any section"
        case .missingEquals: return "missing '=' in assignment"
        case .emptyKey: return "assignment with an empty key"
        case .unsupportedDirective(let directive): return "unsupported directive \(directive)"
        case .notSerializable(let what): return "cannot be written as a unit file: \(what)"
        case .io(let path, let code): return "cannot read \(path): errno \(code)"
        }
    }

    public var description: String {
        "\(file ?? "<input>"):\(line):\(column): \(message)"
    }
}
