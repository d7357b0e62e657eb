/// A deterministic random source (SplitMix64) so a failing generated case can be replayed
/// from its seed. Set `COREOS_TEST_SEED` to replay; the seed in use is in each failure message.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed from `COREOS_TEST_SEED`, or `fallback`.
    public static func seed(fallback: UInt64) -> UInt64 {
        if let text = getenvString("COREOS_TEST_SEED"), let value = UInt64(text) { return value }
        return fallback
    }

    /// A random element of a non-empty array.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &self)] }
}

#if canImport(Glibc)
    import Glibc
#endif

private func getenvString(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
