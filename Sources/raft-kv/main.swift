// A small replicated key-value store on Raft + Storage + TCPTransport, for the
// real-process test (Tests/Interop/raft-kill-leader.sh); not shipped.
//   raft-kv --id N --peers 1=127.0.0.1:P1,2=… --client-port C --data DIR
// Client protocol, one line per request: `PUT key value` → `OK` once applied (or
// `ERR …`), `GET key` → `VALUE v` / `NONE`, `DUMP` → `key=value` lines then `END`,
// `STATUS` → `role R term T leader L commit C`.
import Glibc
import NIOCore
import NIOPosix
import Raft
import RaftTransport
import Storage

func option(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let position = arguments.firstIndex(of: "--" + name), position + 1 < arguments.count else { return nil }
    return arguments[position + 1]
}

func fail(_ message: String) -> Never {
    let text = Array("raft-kv: \(message)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

actor KVNode {
    private var raft: RaftNode
    private let log: DurableLog
    private var transport: TCPTransport?
    private var values: [String: String] = [:]
    private var waiting: [LogIndex: (term: Term, reply: CheckedContinuation<String, Never>)] = [:]
    private var processing = false

    init(raft: RaftNode, log: DurableLog) {
        self.raft = raft
        self.log = log
    }

    func attach(_ transport: TCPTransport) { self.transport = transport }

    func tick() async {
        raft.tick()
        await process()
    }

    func step(_ message: Message) async {
        raft.step(message)
        await process()
    }

    /// Persist, send, apply, advance — one Ready at a time.
    private func process() async {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while raft.hasReady {
            let ready = raft.ready()
            do {
                try await log.save(ready)
            } catch {
                fail("storage: \(error)")
            }
            transport?.send(ready.messages)
            for entry in ready.committedEntries { apply(entry) }
            raft.advance(ready)
        }
    }

    private func apply(_ entry: Entry) {
        if entry.kind == .normal, !entry.data.isEmpty {
            let text = String(decoding: entry.data, as: UTF8.self)
            if let equals = text.firstIndex(of: "=") {
                values[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
        }
        if let waiter = waiting.removeValue(forKey: entry.index) {
            waiter.reply.resume(returning: waiter.term == entry.term ? "OK" : "ERR lost")
        }
    }

    func handle(_ line: String) async -> String {
        let words = line.split(separator: " ", maxSplits: 2).map(String.init)
        switch words.first {
        case "PUT" where words.count == 3:
            guard raft.role == .leader else { return "ERR notleader \(raft.leader)" }
            guard case .appended(let index, let term) = raft.propose(Array("\(words[1])=\(words[2])".utf8)) else {
                return "ERR dropped"
            }
            let answer = await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
                waiting[index] = (term, continuation)
                Task { await self.process() }
                Task {
                    try? await Task.sleep(for: .seconds(5))
                    self.expire(index)
                }
            }
            return answer
        case "GET" where words.count == 2:
            return values[words[1]].map { "VALUE \($0)" } ?? "NONE"
        case "DUMP":
            return (values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + ["END"]).joined(separator: "\n")
        case "STATUS":
            return "role \(raft.role) term \(raft.term) leader \(raft.leader) commit \(raft.commitIndex)"
        default:
            return "ERR usage"
        }
    }

    private func expire(_ index: LogIndex) {
        waiting.removeValue(forKey: index)?.reply.resume(returning: "ERR timeout")
    }
}

/// Lines in, one answer per line out, in order.
final class ClientLines: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let node: KVNode
    private var pending: [UInt8] = []

    init(node: KVNode) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard pending.count < 1 << 20 else {
            context.close(promise: nil)
            return
        }
        while let newline = pending.firstIndex(of: 10) {
            let line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeFirst(newline + 1)
            let channel = context.channel
            let node = self.node
            Task {
                let answer = await node.handle(line)
                var out = channel.allocator.buffer(capacity: answer.utf8.count + 1)
                out.writeString(answer + "\n")
                channel.writeAndFlush(out, promise: nil)
            }
        }
    }
}

guard let idText = option("id"), let id = UInt64(idText), let peersText = option("peers"),
    let clientPortText = option("client-port"), let clientPort = Int(clientPortText), let data = option("data")
else { fail("usage: raft-kv --id N --peers 1=host:port,… --client-port C --data DIR") }
var peers: [NodeID: TCPTransport.Address] = [:]
for item in peersText.split(separator: ",") {
    let parts = item.split(separator: "=")
    guard parts.count == 2, let peer = UInt64(parts[0]) else { fail("bad peer \(item)") }
    let hostPort = parts[1].split(separator: ":")
    guard hostPort.count == 2, let port = Int(hostPort[1]) else { fail("bad peer address \(item)") }
    peers[peer] = TCPTransport.Address(host: String(hostPort[0]), port: port)
}
let log: DurableLog
let opened: DurableLog.Opened
do {
    (log, opened) = try DurableLog.open(path: data, initialMembership: Membership(voters: Set(peers.keys)))
} catch {
    fail("\(error)")
}
if let note = opened.truncatedTail {
    let text = Array("raft-kv: \(note)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
var configuration = RaftConfiguration(id: id, randomSeed: UInt64(getpid()) &* 2_654_435_761)
configuration.electionTicks = 10
let node = KVNode(raft: RaftNode(configuration: configuration, state: opened.state), log: log)
let transport = TCPTransport(id: id, peers: peers) { message in
    Task { await node.step(message) }
}
await node.attach(transport)
do {
    try await transport.start()
    _ = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ClientLines(node: node)) }
        }
        .bind(host: "127.0.0.1", port: clientPort).get()
} catch {
    fail("listen: \(error)")
}
while true {
    try? await Task.sleep(for: .milliseconds(50))
    await node.tick()
}
