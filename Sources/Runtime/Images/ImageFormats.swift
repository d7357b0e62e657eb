import Foundation

/// An OCI content descriptor: what a blob is, its digest and size.
public struct OCIDescriptor: Codable, Sendable, Hashable {
    public struct Platform: Codable, Sendable, Hashable {
        public var architecture: String
        public var os: String
        public var variant: String?
    }

    public var mediaType: String?
    public var digest: String
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?

    public init(mediaType: String?, digest: String, size: Int64, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
    }

    /// The tag an OCI layout gives a manifest (`org.opencontainers.image.ref.name`).
    public var referenceName: String? { annotations?["org.opencontainers.image.ref.name"] }
}

public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    public static func isIndex(_ type: String?) -> Bool { type == ociIndex || type == dockerManifestList }
}

/// `index.json` of a layout, or a multi-platform index.
public struct OCIIndex: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [OCIDescriptor]
}

/// An image manifest: the config blob and the layers, bottom first.
public struct OCIManifest: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: OCIDescriptor
    public var layers: [OCIDescriptor]
    public var annotations: [String: String]?

    public init(config: OCIDescriptor, layers: [OCIDescriptor]) {
        self.schemaVersion = 2
        self.mediaType = MediaType.ociManifest
        self.config = config
        self.layers = layers
    }
}

/// The parts of an image config a runtime reads.
public struct OCIImageConfig: Codable, Sendable, Hashable {
    public struct Execution: Codable, Sendable, Hashable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?
        /// `"80/tcp": {}`; the port is named `80-tcp`, as docker2aci named it for rkt.
        public var ExposedPorts: [String: [String: String]]?
    }

    public struct RootFS: Codable, Sendable, Hashable {
        public var type: String
        public var diff_ids: [String]
    }

    public var architecture: String?
    public var os: String?
    public var config: Execution?
    public var rootfs: RootFS
}

/// An appc image manifest (the `manifest` file of an ACI).
public struct ACIManifest: Codable, Sendable, Hashable {
    public struct Label: Codable, Sendable, Hashable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public struct NameValue: Codable, Sendable, Hashable {
        public var name: String
        public var value: String
    }

    public struct App: Codable, Sendable, Hashable {
        public var exec: [String]?
        public var user: String
        public var group: String
        public var workingDirectory: String?
        public var environment: [NameValue]?
        public var ports: [Port]?
    }

    public struct Port: Codable, Sendable, Hashable {
        public var name: String
        public var `protocol`: String
        public var port: Int
    }

    public struct Dependency: Codable, Sendable, Hashable {
        public var imageName: String
        public var imageID: String?
    }

    public var acKind: String
    public var acVersion: String
    public var name: String
    public var labels: [Label]?
    public var app: App?
    public var dependencies: [Dependency]?

    public func label(_ name: String) -> String? { labels?.first { $0.name == name }?.value }
}

/// One image of `docker save`'s `manifest.json`.
public struct DockerArchiveEntry: Codable, Sendable, Hashable {
    public var Config: String
    public var RepoTags: [String]?
    public var Layers: [String]
}

enum JSONCoding {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], what: String) throws(RuntimeError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw RuntimeError("\(what) is not a valid \(T.self): \(Self.describe(error))")
        }
    }

    static func encode<T: Encodable>(_ value: T, pretty: Bool = false) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? []
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \"\(key.stringValue)\" at \(path(context))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "\(context.debugDescription) at \(path(context))"
        case DecodingError.dataCorrupted(let context):
            return context.debugDescription
        default:
            return "\(error)"
        }
    }

    static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.isEmpty ? "the top" : context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
