import HTTPServer
import NIOHTTP1

/// etcd wraps its whole client-port HTTP handler in CORS: every answer carries these
/// headers, and a preflight `OPTIONS` is answered `200` with no body, whatever the path.
struct CORSResponder: HTTPResponder {
    let wrapped: any HTTPResponder

    static let headers = [
        ("Access-Control-Allow-Headers", "accept, content-type, authorization"),
        ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
        ("Access-Control-Allow-Origin", "*"),
    ]

    private static let names = Set(headers.map { $0.0.lowercased() })

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        var response: HTTPResponse
        if request.method == .OPTIONS {
            response = HTTPResponse(.ok, contentType: "", body: "")
            response.headers = []
        } else {
            response = await wrapped.respond(to: request)
        }
        response.headers = Self.headers + response.headers.filter { !Self.names.contains($0.0.lowercased()) }
        return response
    }
}
