# Hostile and broken gRPC input against an etcd member: malformed protobuf, an unknown
# method, a message over the gRPC limit from a client without etcdctl's send limit, and
# connections dropped mid-preface or mid-stream. Prints one line per probe; the caller
# compares them. Usage: etcd-bad-input.py CLIENT_PORT
import sys, socket, grpc, etcd3
port = int(sys.argv[1])
target = f"127.0.0.1:{port}"
channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
def raw(method, payload):
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        call(payload, timeout=5)
        return "OK"
    except grpc.RpcError as e:
        return f"{e.code().name}: {e.details()}"
# Malformed protobuf: a truncated length-delimited field, an invalid wire type.
print("truncated", raw("/etcdserverpb.KV/Put", b"\x0a\x10abc"))
print("wiretype", raw("/etcdserverpb.KV/Range", b"\x0f\x01"))
print("unknown-method", raw("/etcdserverpb.KV/Nope", b""))
# Over the gRPC limit, from a client without etcdctl's own send limit.
client = etcd3.client(port=port)
client.put("keep", "me")
for size in (3_000_000,):
    def varint(n):
        out = b""
        while n >= 0x80:
            out += bytes([0x80 | (n & 0x7f)]); n >>= 7
        return out + bytes([n])
    print("oversize", raw("/etcdserverpb.KV/Put", b"\x0a\x03big\x12" + varint(size) + b"x" * size))
# Abrupt disconnects: half an HTTP/2 preface, garbage, a connection closed mid-frame.
for junk in (b"PRI * HTTP/2.0\r\n", b"\x00" * 100, b"GET / HTTP/1.1\r\n"):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(junk); s.close()
# A watch stream and a keep-alive stream cut while open.
events, cancel = client.watch_prefix("w")
client.put("w1", "x")
next(iter(events))
channel2 = grpc.insecure_channel(target)
stub = etcd3.etcdrpc.LeaseStub(channel2)
lease = client.lease(60)
responses = stub.LeaseKeepAlive(iter([etcd3.etcdrpc.LeaseKeepAliveRequest(ID=lease.id)]))
next(responses)
channel2.close()
cancel()
print("still-serving", client.get("keep")[0], client.get("w1")[0])
