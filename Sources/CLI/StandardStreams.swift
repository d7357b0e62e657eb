import Glibc
import Synchronization

/// Where an applet writes. Real runs write to file descriptors 1 and 2; tests capture.
public struct StandardStreams: Sendable {
    public let output: any TextSink
    public let error: any TextSink

    public init(output: any TextSink, error: any TextSink) {
        self.output = output
        self.error = error
    }

    /// The process's stdout and stderr.
    public static var process: StandardStreams {
        StandardStreams(output: FileDescriptorSink(descriptor: 1), error: FileDescriptorSink(descriptor: 2))
    }
}

/// A destination for text.
public protocol TextSink: Sendable {
    func write(_ text: String)
    /// Raw bytes (key and value contents need not be UTF-8).
    func write(bytes: [UInt8])
}

extension TextSink {
    public func write(bytes: [UInt8]) { write(String(decoding: bytes, as: UTF8.self)) }

    /// Writes `text` followed by a newline.
    public func line(_ text: String = "") { write(text + "\n") }
}

/// Writes straight to a file descriptor, unbuffered, retrying short writes and EINTR.
///
/// Unbuffered on purpose: readiness lines must reach a pipe or log file at once (tests
/// and supervisors parse them), and applets that print a lot build their text first.
public struct FileDescriptorSink: TextSink {
    public let descriptor: Int32

    public init(descriptor: Int32) { self.descriptor = descriptor }

    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(buffer: $0) }
    }

    public func write(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { write(buffer: $0) }
    }

    private func write(buffer: UnsafeBufferPointer<UInt8>) {
        do {
            guard var base = buffer.baseAddress else { return }
            var remaining = buffer.count
            while remaining > 0 {
                let written = Glibc.write(descriptor, base, remaining)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // EPIPE and the like: the reader is gone; nothing useful to do.
                }
                remaining -= written
                base += written
            }
        }
    }
}

/// Collects text in memory; for tests and for applets that compose output first.
public final class CapturingSink: TextSink {
    private let storage = Mutex("")

    public init() {}

    public func write(_ text: String) { storage.withLock { $0 += text } }

    /// Everything written so far.
    public var text: String { storage.withLock { $0 } }
}
