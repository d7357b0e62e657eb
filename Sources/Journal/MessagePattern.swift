import CDynamicLibraries

/// `--grep`: a PCRE2 pattern matched against MESSAGE, through libpcre2 as journalctl
/// does. Case: insensitive when the pattern has no uppercase letter, unless told.
public final class MessagePattern {
    private let regex: OpaquePointer

    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `caseSensitive` nil: journalctl's rule (all lowercase → insensitive).
    public init(_ pattern: String, caseSensitive: Bool?) throws(CompileError) {
        let caseless = caseSensitive.map { !$0 } ?? !pattern.contains { $0.isUppercase }
        var message = [CChar](repeating: 0, count: 256)
        let bytes = Array(pattern.utf8)
        let compiled = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                coreos_regex_compile($0.baseAddress, $0.count, caseless ? 1 : 0, &message, message.count)
            }
        }
        guard let compiled else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CompileError(description: "Bad pattern \"\(pattern)\": \(reason)")
        }
        regex = compiled
    }

    deinit { coreos_regex_free(regex) }

    public func matches(_ subject: ArraySlice<UInt8>) -> Bool { match(subject) != nil }

    /// The byte range (from the subject's start) of the first match, nil without one.
    public func match(_ subject: ArraySlice<UInt8>) -> Range<Int>? {
        var start = 0
        var end = 0
        let result = subject.withUnsafeBytes { coreos_regex_match(regex, $0.baseAddress, $0.count, &start, &end) }
        return result == 1 && start <= end ? start..<end : nil
    }
}
