import Foundation
import Glibc

extension PodRunner {
    /// rkt's `export`: an exited pod's app, as the app left it (image tree plus what it
    /// wrote), into an ACI with a manifest made from the image's and the app's settings.
    public func export(_ pod: Pod, app name: String?, to output: String, overwrite: Bool) throws(RuntimeError) {
        guard pod.state == .run || pod.state == .exitedGarbage, !PodStore.isAlive(pod) else {
            throw RuntimeError("pod \(pod.uuid) must have exited to be exported (it is \(pod.state.shown(alive: PodStore.isAlive(pod))))")
        }
        let manifest = try pods.manifest(pod)
        guard let app = name.map({ name in manifest.apps.first { $0.name == name } }) ?? (manifest.apps.count == 1 ? manifest.apps.first : nil) else {
            throw RuntimeError(name.map { "pod \(pod.uuid) has no app \($0)" } ?? "pod \(pod.uuid) has several apps; name one with --app")
        }
        if FileManager.default.fileExists(atPath: output) && !overwrite { throw RuntimeError("\(output) exists; use --overwrite") }
        var layers: [String]
        if manifest.coreos.overlay {
            let trees = (try? String(contentsOfFile: pod.directory + "/apps/\(app.name)/tree", encoding: .utf8)) ?? ""
            layers = [pod.directory + "/overlay/\(app.name)/upper"] + trees.split(separator: ":").map(String.init)
        } else {
            layers = [pod.directory + "/apps/\(app.name)/copy"]
        }
        for layer in layers where !FileManager.default.fileExists(atPath: layer) {
            throw RuntimeError("pod \(pod.uuid): the tree \(layer) of \(app.name) is gone")
        }
        let record = try? images.resolve(app.image.id)
        var labels: [ACIManifest.Label] = [.init(name: "os", value: "linux"), .init(name: "arch", value: ImageStore.machineArchitecture)]
        if let version = record?.version, !version.isEmpty { labels.insert(.init(name: "version", value: version), at: 0) }
        let aci = ACIManifest(
            acKind: "ImageManifest", acVersion: "0.8.11", name: record?.name ?? app.name, labels: labels,
            app: .init(
                exec: app.app.exec, user: app.app.user, group: app.app.group, workingDirectory: app.app.workingDirectory,
                environment: app.app.environment.map { .init(name: $0.name, value: $0.value) }, ports: nil),
            dependencies: nil)
        let temporary = output + ".coreos-export-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw RuntimeError("create \(temporary): \(String(cString: strerror(errno)))") }
        do throws(RuntimeError) {
            let writer = TarWriter(descriptor: descriptor)
            let manifestBytes = JSONCoding.encode(aci)
            var header = TarWriter.Header(path: "manifest", kind: .regular, mode: 0o644)
            header.size = Int64(manifestBytes.count)
            header.mtime = Int(ImageStore.now)
            try writer.add(header) { (output) throws(RuntimeError) in
                guard manifestBytes.withUnsafeBytes({ ImageStore.writeAll(output, $0) }) else { throw RuntimeError("write the manifest") }
            }
            var root = TarWriter.Header(path: "rootfs", kind: .directory, mode: 0o755)
            root.mtime = header.mtime
            try writer.add(root)
            try TreeArchiver(layers: layers).write(to: writer, prefix: "rootfs")
            try writer.finish()
            guard fsync(descriptor) == 0 else { throw RuntimeError("fsync \(temporary): \(String(cString: strerror(errno)))") }
        } catch {
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, output) == 0 else {
            unlink(temporary)
            throw RuntimeError("rename to \(output): \(String(cString: strerror(errno)))")
        }
    }
}
