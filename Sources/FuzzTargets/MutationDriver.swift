import Foundation

/// A small coverage-blind fuzzer for builds without libFuzzer (the test build, CI): the
/// seed corpus, then random mutations of it (bit and byte flips, inserted, deleted and
/// repeated runs, interesting integers, splices of two inputs, tokens from the seeds) for
/// a fixed budget. libFuzzer finds more per second (it follows coverage); this one needs
/// no special build and still catches what shallow mutations reach.
///
/// A crash is reported by the runtime; the input that caused it is written beforehand to
/// `crash-TARGET` so it can be replayed (`coreos-fuzz TARGET crash-TARGET`).
public struct MutationDriver {
    public let target: FuzzTargets.Target
    public var seeds: [[UInt8]]
    public var maxLength = 64 << 10
    var generator: SplitMix

    public init(target: FuzzTargets.Target, seeds: [[UInt8]], seed: UInt64) {
        self.target = target
        self.seeds = seeds.isEmpty ? [[]] : seeds
        self.generator = SplitMix(state: seed)
    }

    /// Runs every seed, then mutations until `runs` inputs or `deadline`; the count run.
    public mutating func run(runs: Int, until deadline: ContinuousClock.Instant, crashFile: String) -> Int {
        var count = 0
        for seed in seeds {
            execute(seed, crashFile: crashFile)
            count += 1
        }
        while count < runs && ContinuousClock.now < deadline {
            let input = mutate(seeds[generator.below(seeds.count)])
            execute(input, crashFile: crashFile)
            count += 1
        }
        return count
    }

    /// Keeps the input on disk while it runs: if it brings the process down, it stays.
    func execute(_ input: [UInt8], crashFile: String) {
        _ = FileManager.default.createFile(atPath: crashFile, contents: Data(input))
        target.run(input)
    }

    static let interesting: [[UInt8]] = [
        [0], [0xFF], [0x7F], [0x80], [0xFF, 0xFF, 0xFF, 0xFF], [0xFF, 0xFF, 0xFF, 0x7F], [0, 0, 0, 0x80],
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], Array("\n".utf8), Array("\\".utf8), Array("\"".utf8),
        Array("%".utf8), Array("[".utf8), Array("{".utf8), Array(":".utf8), Array("&".utf8), Array("*".utf8),
    ]

    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        let steps = 1 + generator.below(4)
        for _ in 0..<steps {
            let position = bytes.isEmpty ? 0 : generator.below(bytes.count)
            switch generator.next() % 9 {
            case 0 where !bytes.isEmpty:
                bytes[position] ^= UInt8(1 << (generator.next() % 8))
            case 1 where !bytes.isEmpty:
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            case 2:
                let run = Array(repeating: UInt8(truncatingIfNeeded: generator.next()), count: 1 + generator.below(64))
                bytes.insert(contentsOf: run, at: position)
            case 3 where !bytes.isEmpty:
                let length = min(bytes.count - position, 1 + generator.below(32))
                bytes.removeSubrange(position..<(position + length))
            case 4 where !bytes.isEmpty:
                // A run repeated: deep nesting, long lines, many entries.
                let length = min(bytes.count - position, 1 + generator.below(16))
                let piece = Array(bytes[position..<(position + length)])
                for _ in 0..<(1 + generator.below(64)) { bytes.insert(contentsOf: piece, at: position) }
            case 5:
                let value = Self.interesting[generator.below(Self.interesting.count)]
                bytes.insert(contentsOf: value, at: position)
            case 6 where seeds.count > 1:
                // A splice: this input's head, another seed's tail.
                let other = seeds[generator.below(seeds.count)]
                let cut = other.isEmpty ? 0 : generator.below(other.count)
                bytes = Array(bytes[..<position]) + other[cut...]
            case 7 where !bytes.isEmpty:
                bytes.removeSubrange(position...)
            case 8 where bytes.count >= 2:
                let other = generator.below(bytes.count)
                bytes.swapAt(position, other)
            default:
                bytes.append(UInt8(truncatingIfNeeded: generator.next()))
            }
        }
        return bytes.count > maxLength ? Array(bytes.prefix(maxLength)) : bytes
    }
}

/// A seedable generator (SplitMix64), so a run can be repeated.
struct SplitMix {
    /// A number in `0..<bound` (`bound` > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
