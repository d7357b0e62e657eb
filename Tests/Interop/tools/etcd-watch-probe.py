"""Watch behaviour that etcdctl does not reach, through raw gRPC: progress notifications,
a slow reader (the server must neither lose nor repeat events when it makes the watcher
catch up from history), and fragmentation of a response larger than the request limit.
Prints one line per probe for the caller to compare. Usage: etcd-watch-probe.py PORT
"""
import queue
import sys
import threading
import time

import etcd3
import grpc
from etcd3.etcdrpc import rpc_pb2 as rpc

port = int(sys.argv[1])
client = etcd3.client(port=port)
channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)])
# Raw requests: python3-etcd3's generated code predates the `fragment` field.
watch_call = channel.stream_stream(
    "/etcdserverpb.Watch/Watch", request_serializer=lambda raw: raw, response_deserializer=rpc.WatchResponse.FromString)


def stream(*requests):
    """Responses of one watch stream; the requests are sent first, the stream kept open."""
    outgoing = queue.Queue()
    for request in requests:
        outgoing.put(request)

    def generate():
        while True:
            item = outgoing.get()
            if item is None:
                return
            yield item

    return watch_call(generate()), outgoing


def create(key, fragment=False, **fields):
    inner = rpc.WatchCreateRequest(key=key.encode(), **fields).SerializeToString()
    if fragment:
        inner += b"\x40\x01"  # field 8 (fragment), varint 1
    return b"\x0a" + encode_varint(len(inner)) + inner


def encode_varint(value):
    out = b""
    while value >= 0x80:
        out += bytes([0x80 | (value & 0x7F)])
        value >>= 7
    return out + bytes([value])


# Progress notification: an empty response for the watcher, carrying the revision.
revision = client.put("progress", "x").header.revision
responses, outgoing = stream(create("progress", progress_notify=True))
first = next(responses)
notice = next(responses)
print("progress", first.created, notice.watch_id == first.watch_id, len(notice.events), notice.header.revision == revision)
outgoing.put(None)

# A slow reader: 3000 puts of 2 KiB while the watcher reads nothing, then everything.
start = client.put("slow/start", "x").header.revision
responses, outgoing = stream(create("slow/", range_end=b"slow0", start_revision=start + 1))
assert next(responses).created
value = "v" * 2048
for index in range(3000):
    client.put(f"slow/{index:05d}", value)
time.sleep(1)
seen = []
while len(seen) < 3000:
    response = next(responses)
    if response.canceled:
        print("slow canceled", response.compact_revision)
        break
    seen.extend(event.kv.mod_revision for event in response.events)
expected = list(range(start + 1, start + 3001))
print("slow", len(seen), seen == expected)
outgoing.put(None)

# Fragmentation: three 1 MB values replayed from history, above a 1.5 MiB response.
first_revision = None
for index in range(3):
    header = client.put(f"frag/{index}", "f" * 1_000_000).header
    first_revision = first_revision or header.revision
for fragment in (False, True):
    responses, outgoing = stream(create("frag/", range_end=b"frag0", start_revision=first_revision, fragment=fragment))
    assert next(responses).created
    events, pieces = 0, 0
    while events < 3:
        response = next(responses)
        pieces += 1
        events += len(response.events)
    print("fragment" if fragment else "whole", events, pieces)
    outgoing.put(None)
