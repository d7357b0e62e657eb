import FuzzTargets
import Foundation

#if canImport(Glibc)
import Glibc
#endif

// The fuzzing front end. Two builds of one file:
// - the normal build (tests, CI): `coreos-fuzz TARGET [--seconds S] [--runs N] [--seed N]
//   [--max-rss-mb M] [CORPUS...]` runs the seeds and then MutationDriver's mutations for the
//   budget; `coreos-fuzz list` names the targets.
// - `-D LIBFUZZER` with libFuzzer linked (contrib/fuzz/libfuzzer.sh): libFuzzer drives the
//   target named by COREOS_FUZZ_TARGET, with libFuzzer's own arguments.

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func runLibFuzzer(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) var selectedTarget: FuzzTargets.Target?

/// SwiftPM names an executable's entry `<module>_main` and points `main` at it.
@_cdecl("coreos_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let name = ProcessInfo.processInfo.environment["COREOS_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.named(name) else {
        FileHandle.standardError.write(Data("coreos-fuzz: set COREOS_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: " "))\n".utf8))
        return 2
    }
    selectedTarget = target
    var count = argc
    var arguments = argv
    return runLibFuzzer(&count, &arguments) { data, size in
        selectedTarget?.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
#else
@main
struct FuzzMain {
    static func fail(_ message: String, status: Int32 = 2) -> Never {
        FileHandle.standardError.write(Data("coreos-fuzz: \(message)\n".utf8))
        exit(status)
    }

    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, name != "-h", name != "--help" else {
            fail("usage: coreos-fuzz list | TARGET [--seconds S] [--runs N] [--seed N] [--max-rss-mb M] [CORPUS...]")
        }
        arguments.removeFirst()
        if name == "list" {
            for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
            return
        }
        guard let target = FuzzTargets.named(name) else {
            fail("unknown target \(name); known: \(FuzzTargets.all.map(\.name).joined(separator: " "))")
        }
        var seconds = 10.0, runs = Int.max, seed = UInt64.random(in: 1...UInt64.max), maxRSS = 2048
        var paths: [String] = []
        while !arguments.isEmpty {
            let argument = arguments.removeFirst()
            func value() -> String {
                guard !arguments.isEmpty else { fail("\(argument) needs a value") }
                return arguments.removeFirst()
            }
            func number<N: LosslessStringConvertible>(_: N.Type) -> N {
                guard let parsed = N(value()) else { fail("\(argument) needs a number") }
                return parsed
            }
            switch argument {
            case "--seconds": seconds = number(Double.self)
            case "--runs": runs = number(Int.self)
            case "--seed": seed = number(UInt64.self)
            case "--max-rss-mb": maxRSS = number(Int.self)
            default: paths.append(argument)
            }
        }
        var seeds: [[UInt8]] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { fail("\(path): no such file") }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
                : [path]
            for file in files {
                if let data = FileManager.default.contents(atPath: file) { seeds.append(Array(data)) }
            }
        }
        let crashFile = "crash-\(target.name)"
        Watchdog.start(limitSeconds: 20, maxRSSMegabytes: maxRSS, crashFile: crashFile)
        var driver = MutationDriver(target: target, seeds: seeds, seed: seed)
        let started = ContinuousClock.now
        let count = driver.run(runs: runs, until: started + .milliseconds(Int(seconds * 1000)), crashFile: crashFile)
        try? FileManager.default.removeItem(atPath: crashFile)
        let elapsed = ContinuousClock.now - started
        let rate = Double(count) / max(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, 0.001)
        print("coreos-fuzz \(target.name): \(count) inputs (\(seeds.count) seeds) in \(elapsed), \(Int(rate))/s, seed \(seed), peak RSS \(Watchdog.peakRSSMegabytes()) MiB: no crash, no hang")
    }
}

/// Fails the run when one input takes too long or the process grows past its budget: a
/// hang and unbounded memory are bugs too. The input is left in the crash file.
enum Watchdog {
    static func start(limitSeconds: Int, maxRSSMegabytes: Int, crashFile: String) {
        let thread = Thread {
            var lastStamp: Date?
            var sameFor = 0
            while true {
                sleep(1)
                if peakRSSMegabytes() > maxRSSMegabytes {
                    FuzzMain.fail("memory over \(maxRSSMegabytes) MiB; the input is in \(crashFile)", status: 1)
                }
                // The crash file is rewritten for every input; unchanged for the limit means one input is stuck.
                let stamp = (try? FileManager.default.attributesOfItem(atPath: crashFile))?[.modificationDate] as? Date
                sameFor = stamp == lastStamp ? sameFor + 1 : 0
                lastStamp = stamp
                if sameFor >= limitSeconds {
                    FuzzMain.fail("one input ran over \(limitSeconds) s (a hang); it is in \(crashFile)", status: 1)
                }
            }
        }
        thread.start()
    }

    static func peakRSSMegabytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss / 1024
    }
}
#endif
