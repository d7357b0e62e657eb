import CLI
import Glibc
import Foundation
import Runtime

/// `coreos run` / `rkt`: rkt's command line over the Runtime module. Images so far:
/// `fetch` and `image list|rm|gc|extract|render|cat-manifest|export|verify`.
enum RunCommand {
    /// rkt's own failures; an app's status is passed through unchanged.
    static let runtimeFailure: Int32 = 254

    static let commandFlags = [
        PFlag("full", .bool, default: "false", "use long output format"),
        PFlag("no-legend", .bool, default: "false", "suppress a legend with the list"),
        PFlag("pretty-print", .bool, default: "true", "apply indent to format the output"),
        PFlag("rootfs-only", .bool, default: "false", "extract rootfs only"),
        PFlag("overwrite", .bool, default: "false", "overwrite output directory or file"),
        PFlag("grace-period", .duration, default: "24h0m0s", "duration to wait since an image was last used before removing it"),
        PFlag("quiet", shorthand: "q", .bool, default: "false", "print only the image ID"),
        PFlag("pull-policy", .string, default: "new", "when to pull an image: new, update, never"),
    ]

    static func main(_ argv: [String], _ io: StandardStreams) async -> Int32 {
        // Global flags come before the command; each command parses the rest itself.
        var words = Array(argv.dropFirst())
        var directory = "/var/lib/coreos/rkt"
        var fetchOptions = FetchOptions()
        var localConfig = "/etc/rkt"
        while let word = words.first, word.hasPrefix("-") {
            words.removeFirst()
            let name = String(word.drop { $0 == "-" })
            if name == "help" || name == "h" {
                io.output.write(usage)
                return ExitStatus.success
            }
            let key = name.split(separator: "=", maxSplits: 1).first.map(String.init) ?? name
            guard ["dir", "insecure-options", "debug", "local-config"].contains(key) else {
                return usageError("unknown flag: \(word)", io)
            }
            var value = name.contains("=") ? String(name[name.index(after: name.firstIndex(of: "=")!)...]) : nil
            if key != "debug" && value == nil {
                guard !words.isEmpty else { return usageError("flag needs an argument: \(word)", io) }
                value = words.removeFirst()
            }
            if key == "dir", let value { directory = value }
            if key == "local-config", let value { localConfig = value }
            if key == "insecure-options", let value {
                let known = ["none", "http", "image", "tls", "pubkey", "capabilities", "paths", "seccomp", "all-fetch", "all-run", "all"]
                for option in value.split(separator: ",") where !known.contains(String(option)) {
                    return usageError("unknown insecure option \(option)", io)
                }
                let options = value.split(separator: ",")
                fetchOptions.insecureHTTP = options.contains { ["http", "all-fetch", "all"].contains($0) }
                fetchOptions.verifySignatures = !options.contains { ["image", "all-fetch", "all"].contains($0) }
            }
        }
        if isatty(2) != 0 {
            fetchOptions.progress = { blob, have, total in
                let text = "Downloading \(blob.prefix(19)): \(humanSize(have)) / \(humanSize(total))"
                FileDescriptorSink(descriptor: 2).write("\r" + text + (have >= total ? "\n" : ""))
            }
        }
        guard let command = words.first else {
            io.error.write(usage)
            return ExitStatus.usage
        }
        let operands = Array(words.dropFirst())
        do {
            let store = try ImageStore(directory: directory)
            switch command {
            case "fetch":
                if let policy = operands.first(where: { $0.hasPrefix("--pull-policy=") }) { fetchOptions.pullPolicy = String(policy.dropFirst(14)) }
                let images = operands.filter { !$0.hasPrefix("--") }
                guard !images.isEmpty else { return usageError("fetch: at least one image is required", io) }
                for operand in images {
                    io.output.line(try await store.fetch(ImageReference(parsing: operand), options: fetchOptions).id)
                }
                return ExitStatus.success
            case "image":
                let parsed: PFlagResult
                do {
                    parsed = try PFlagParser(commandFlags).parse(operands)
                } catch {
                    return usageError(error.message, io)
                }
                return try image(parsed.operands, parsed: parsed, store: store, io: io)
            case "trust":
                return try trust(operands, store: store, io: io)
            case "help":
                io.output.write(usage)
                return ExitStatus.success
            default:
                return try await RunPodCommands.run(command, operands, images: store, fetch: fetchOptions, localConfig: localConfig, io: io)
            }
        } catch {
            io.error.line("run: \(error)")
            return runtimeFailure
        }
    }

    /// `trust [--prefix=P | --root] [--skip-fingerprint-review] KEYFILE…`
    static func trust(_ words: [String], store: ImageStore, io: StandardStreams) throws(RuntimeError) -> Int32 {
        var prefix: String?
        var root = false
        var skipReview = false
        var files: [String] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if word.hasPrefix("--prefix=") {
                prefix = String(word.dropFirst(9))
            } else if word == "--prefix", index < words.count {
                prefix = words[index]
                index += 1
            } else if word == "--root" {
                root = true
            } else if word == "--skip-fingerprint-review" {
                skipReview = true
            } else if word.hasPrefix("-") {
                return usageError("trust: unknown flag \(word)", io)
            } else {
                files.append(word)
            }
        }
        guard !files.isEmpty, (prefix != nil) != root else {
            return usageError("trust: give --prefix=PREFIX or --root, and a key file", io)
        }
        let trustStore = TrustStore(storeDirectory: store.directory)
        for file in files {
            let fingerprint = try TrustStore.fingerprint(of: file)
            io.error.line("Prefix: \"\(prefix ?? "")\"\nKey: \"\(file)\"\nGPG key fingerprint is: \(fingerprint)")
            if !skipReview {
                // rkt asks on a terminal; without one the review flag is required.
                guard isatty(0) != 0 else { throw RuntimeError("trust: no terminal to confirm the fingerprint on; use --skip-fingerprint-review") }
                io.error.write("Are you sure you want to trust this key (yes/no)? ")
                guard let answer = readLine(), answer.lowercased().hasPrefix("y") else { throw RuntimeError("trust: not trusted") }
            }
            let path = try trustStore.add(keyFile: file, prefix: root ? nil : prefix)
            io.output.line(root ? "Added root key at \"\(path)\"" : "Added key for prefix \"\(prefix ?? "")\" at \"\(path)\"")
        }
        return ExitStatus.success
    }

    static func usageError(_ message: String, _ io: StandardStreams) -> Int32 {
        io.error.line("Error: \(message)")
        io.error.line("Run 'rkt --help' for usage.")
        return ExitStatus.usage
    }

    static func image(_ operands: [String], parsed: PFlagResult, store: ImageStore, io: StandardStreams) throws(RuntimeError) -> Int32 {
        guard let subcommand = operands.first else { return usageError("image: a subcommand is required", io) }
        let rest = Array(operands.dropFirst())
        switch subcommand {
        case "list":
            io.output.write(list(store.records(), full: parsed.bool("full"), legend: !parsed.bool("no-legend")))
        case "rm":
            guard !rest.isEmpty else { return usageError("image rm: at least one image is required", io) }
            var failed = false
            for name in rest {
                do {
                    let record = try store.resolve(name)
                    try store.remove(record)
                    io.output.line("successfully removed image with ID: \(record.id)")
                } catch {
                    io.error.line("rm: \(error)")
                    failed = true
                }
            }
            return failed ? runtimeFailure : ExitStatus.success
        case "gc":
            let grace = parsed.string("grace-period").flatMap(GoValues.parseDuration) ?? .seconds(86400)
            let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
            for record in try store.collectGarbage(gracePeriod: seconds) {
                io.output.line("successfully removed image with ID: \(record.id)")
            }
        case "cat-manifest":
            guard rest.count == 1 else { return usageError("image cat-manifest: exactly one image is required", io) }
            let bytes = try store.manifestBytes(try store.resolve(rest[0]))
            if parsed.string("pretty-print") != "false",
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)),
                let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            {
                io.output.line(String(decoding: pretty, as: UTF8.self))
            } else {
                io.output.write(bytes: bytes)
            }
        case "extract", "render":
            guard rest.count == 2 else { return usageError("image \(subcommand): IMAGE and OUTPUT_DIR are required", io) }
            let record = try store.resolve(rest[0])
            let output = rest[1]
            if FileManager.default.fileExists(atPath: output) {
                guard parsed.bool("overwrite") else { throw RuntimeError("\(output) exists; use --overwrite") }
                try? FileManager.default.removeItem(atPath: output)
            }
            let rootfsOnly = subcommand == "render" || parsed.bool("rootfs-only")
            try store.renderInto(rootfsOnly ? output : output + "/rootfs", record)
            if !rootfsOnly {
                guard FileManager.default.createFile(atPath: output + "/manifest", contents: Data(try store.manifestBytes(record))) else {
                    throw RuntimeError("cannot write \(output)/manifest")
                }
            }
        case "export":
            guard rest.count == 2 else { return usageError("image export: IMAGE and OUTPUT_ACI_FILE are required", io) }
            let record = try store.resolve(rest[0])
            guard record.kind == .aci, let blob = record.blob else {
                throw RuntimeError("image export: \(record.id) is an OCI image; only ACIs export as .aci (use image extract)")
            }
            if FileManager.default.fileExists(atPath: rest[1]) {
                guard parsed.bool("overwrite") else { throw RuntimeError("\(rest[1]) exists; use --overwrite") }
                try? FileManager.default.removeItem(atPath: rest[1])
            }
            do {
                try FileManager.default.copyItem(atPath: store.blobPath(blob), toPath: rest[1])
            } catch {
                throw RuntimeError("export to \(rest[1]): \(error.localizedDescription)")
            }
        case "verify":
            guard !rest.isEmpty else { return usageError("image verify: at least one image is required", io) }
            for name in rest {
                let record = try store.resolve(name)
                try store.verify(record)
                io.output.line("successfully verified checksum for image: \(record.id)")
            }
        default:
            return usageError("unknown command \"\(subcommand)\" for \"rkt image\"", io)
        }
        return ExitStatus.success
    }

    /// rkt's `image list` table: ID, NAME, SIZE, IMPORT TIME, LAST USED.
    static func list(_ records: [ImageRecord], full: Bool, legend: Bool) -> String {
        var rows: [[String]] = legend ? [["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"]] : []
        for record in records {
            rows.append([
                full ? record.id : String(record.id.prefix(19)), record.reference, humanSize(record.size),
                age(record.importTime), age(record.lastUsed),
            ])
        }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in index == 4 ? cell : cell.padding(toLength: widths[index] + 1, withPad: " ", startingAt: 0) }
                .joined()
        }.map { $0 + "\n" }.joined()
    }

    static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes)\(units[0])" : String(format: "%.1f%@", value, units[unit])
    }

    static func age(_ time: Double) -> String {
        let seconds = max(0, Int(Date().timeIntervalSince1970 - time))
        switch seconds {
        case ..<60: return "\(seconds) seconds ago"
        case ..<3600: return "\(seconds / 60) minutes ago"
        case ..<86400: return "\(seconds / 3600) hours ago"
        default: return "\(seconds / 86400) days ago"
        }
    }

    static let usage = """
        Usage:
          rkt [command]

        Available Commands:
          run           Run image(s) in a pod: IMAGE [--exec=PROG] [--user=U] [-- ARGS…] [--- IMAGE …]
          prepare       Prepare a pod (prints its UUID); run-prepared UUID runs it
          list          List pods (--format=json, --no-legend, --full)
          status        Status of a pod (--wait, --format=json)
          stop          Stop pods (SIGTERM to the app; --force: SIGKILL)
          enter         Run a command in a running pod's namespaces (default /bin/sh)
          rm            Remove exited pods
          gc            Garbage collect exited pods (--grace-period, --expire-prepared)
          cat-manifest  Print a pod's manifest
          export        Export an exited pod's app as an ACI: [--app=NAME] UUID OUT.aci
          trust         Trust a key to sign ACIs: --prefix=NAME-PREFIX or --root, KEYFILE
          fetch         Fetch image(s) and store them in the local store
          image list    List images in the local store
          image rm      Remove one or more images from the local store
          image gc      Garbage collect images not used within --grace-period
          image extract Extract a stored image to a directory (manifest and rootfs/)
          image render  Render a stored image's root file system to a directory
          image cat-manifest  Inspect and print the image manifest
          image export  Export a stored ACI to an .aci file
          image verify  Re-check every blob of an image against its digest

        ACIs need a detached signature (PATH.aci.asc) by a trusted key, unless
          --insecure-options=image.
        Images: NAME[:VERSION] or an ID in the store, PATH.aci or file://PATH,
          oci:DIR[:TAG] (an OCI image layout), docker-archive:FILE[:TAG] (docker save).

        Run flags: --net=host|none, --hostname, --memory=128M, --cpu=500m,
          --set-env=K=V, --set-env-file=F, --inherit-env, --environment=K=V (per app),
          --volume=NAME,kind=host|empty[,source=P][,readOnly=true] with --mount=volume=NAME,target=/P,
          --caps-retain/--caps-remove=CAP_X,…, --readonly-rootfs, --no-overlay, --uuid-file-save=F.
        Exit status: the app's (128+signal when killed), 254 for runtime errors, 2 for usage.

        Global Flags:
              --dir string            rkt data directory (default "/var/lib/coreos/rkt")
              --local-config string   where net.d/*.conf define networks (default "/etc/rkt")

        """
}
