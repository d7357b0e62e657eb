"""Random but well-formed requests against a live server: the gRPC handlers (every field
of etcd's request messages filled from the protobuf descriptors with edge values) and the
v2 keys API's query parsing (random methods, paths, parameters and bodies).

    live-requests.py HOST:PORT [--seconds S] [--seed N]

The server must answer every request (any gRPC status, any HTTP status below 500) and
stay healthy; a dropped connection, a 5xx, or a failed /health is a failure, printed with
the request that caused it. Calls that would change the cluster's shape or lock the
client out (member add/promote, auth enable, defragment, raising an alarm) are left out.
"""
import argparse
import http.client
import random
import sys
import time
import urllib.parse

import grpc
from etcd3 import etcdrpc
from google.protobuf.descriptor import FieldDescriptor

INTS = [0, 1, -1, 2, 7, 127, 128, 255, 256, 65535, 2**31 - 1, -2**31, 2**32, 2**62, 2**63 - 1, -2**63]
UNSIGNED = [0, 1, 2, 255, 65535, 2**32 - 1, 2**63, 2**64 - 1]


def random_bytes(rng):
    choice = rng.random()
    if choice < 0.3:
        return rng.choice([b"", b"\0", b"a", b"k/1", b"\xff", b"\xff" * 8, b"a\0b"])
    if choice < 0.35:
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([1024, 70000])))
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24)))


def fill(message, rng, depth=0):
    for field in message.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        count = rng.randint(0, 3) if field.label == FieldDescriptor.LABEL_REPEATED else 1
        for _ in range(count):
            value = None
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth >= 3:
                    continue
                if field.label == FieldDescriptor.LABEL_REPEATED:
                    fill(getattr(message, field.name).add(), rng, depth + 1)
                else:
                    fill(getattr(message, field.name), rng, depth + 1)
                continue
            if field.type in (FieldDescriptor.TYPE_BYTES,):
                value = random_bytes(rng)
            elif field.type == FieldDescriptor.TYPE_STRING:
                value = rng.choice(["", "a", "root", "x" * 300, "é", "http://127.0.0.1:1"])
            elif field.type == FieldDescriptor.TYPE_BOOL:
                value = rng.random() < 0.5
            elif field.type == FieldDescriptor.TYPE_ENUM:
                value = rng.choice([v.number for v in field.enum_type.values] + [99])
            elif field.type in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED64):
                value = rng.choice(UNSIGNED)
                if field.type == FieldDescriptor.TYPE_UINT32:
                    value &= 0xFFFFFFFF
            else:
                value = rng.choice(INTS)
                if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
                    value = max(-2**31, min(2**31 - 1, value))
            try:
                if field.label == FieldDescriptor.LABEL_REPEATED:
                    getattr(message, field.name).append(value)
                else:
                    setattr(message, field.name, value)
            except (ValueError, TypeError):
                pass
    return message


def unary_calls(channel):
    kv, lease = etcdrpc.KVStub(channel), etcdrpc.LeaseStub(channel)
    maintenance, cluster = etcdrpc.MaintenanceStub(channel), etcdrpc.ClusterStub(channel)
    auth = etcdrpc.AuthStub(channel)
    return [
        (kv.Range, etcdrpc.RangeRequest), (kv.Put, etcdrpc.PutRequest), (kv.DeleteRange, etcdrpc.DeleteRangeRequest),
        (kv.Txn, etcdrpc.TxnRequest), (kv.Compact, etcdrpc.CompactionRequest),
        (lease.LeaseGrant, etcdrpc.LeaseGrantRequest), (lease.LeaseRevoke, etcdrpc.LeaseRevokeRequest),
        (lease.LeaseTimeToLive, etcdrpc.LeaseTimeToLiveRequest), (lease.LeaseLeases, etcdrpc.LeaseLeasesRequest),
        (maintenance.Status, etcdrpc.StatusRequest), (maintenance.Hash, etcdrpc.HashRequest),
        (maintenance.HashKV, etcdrpc.HashKVRequest), (maintenance.Alarm, etcdrpc.AlarmRequest),
        (cluster.MemberList, etcdrpc.MemberListRequest), (cluster.MemberRemove, etcdrpc.MemberRemoveRequest),
        (auth.Authenticate, etcdrpc.AuthenticateRequest), (auth.UserGet, etcdrpc.AuthUserGetRequest),
        (auth.RoleGet, etcdrpc.AuthRoleGetRequest), (auth.UserList, etcdrpc.AuthUserListRequest),
    ]


def healthy(endpoint):
    try:
        connection = http.client.HTTPConnection(*endpoint.rsplit(":", 1), timeout=5)
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False


V2_PARAMETERS = ["recursive", "wait", "waitIndex", "prevExist", "prevValue", "prevIndex", "ttl", "dir", "sorted",
                 "quorum", "stream", "refresh", "value", "noValueOnSuccess"]
V2_VALUES = ["", "true", "false", "1", "0", "-1", "abc", "9223372036854775808", "%zz", "a&b", "x" * 2000]


def v2_request(rng):
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"])
    path = "/v2/keys/" + "/".join(rng.choice(["a", "b", "", "..", "%2F", "_hidden", "x" * 300, "%00"])
                                  for _ in range(rng.randint(0, 4)))
    query = [(rng.choice(V2_PARAMETERS), rng.choice(V2_VALUES)) for _ in range(rng.randint(0, 4))]
    # A long poll (wait=true, or 1 as Go's ParseBool reads it) only waits out the timeout.
    query = [(k, v) for k, v in query if not (k == "wait" and v in ("true", "1"))]
    body = urllib.parse.urlencode([(rng.choice(V2_PARAMETERS), rng.choice(V2_VALUES)) for _ in range(rng.randint(0, 3))])
    if rng.random() < 0.1:
        body = "".join(rng.choice("=&%+a\0") for _ in range(rng.randint(0, 40)))
    return method, path + ("?" + urllib.parse.urlencode(query) if query else ""), body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    options = parser.parse_args()
    rng = random.Random(options.seed)
    deadline = time.monotonic() + options.seconds
    counts = {"grpc": 0, "grpc_errors": 0, "watch": 0, "v2": 0}
    channel = grpc.insecure_channel(options.endpoint, options=[("grpc.max_send_message_length", 8 << 20)])
    calls = unary_calls(channel)
    watch = etcdrpc.WatchStub(channel)

    def fail(what, request):
        print(f"live-requests: FAILED after {counts}: {what}\n  request: {str(request)[:2000]!r}\n  seed {options.seed}")
        sys.exit(1)

    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.75:
            method, kind = rng.choice(calls)
            request = fill(kind(), rng)
            if kind is etcdrpc.AlarmRequest:
                request.action = etcdrpc.AlarmRequest.GET  # a raised alarm is a correct unhealthy state
            try:
                method(request, timeout=5)
            except grpc.RpcError as error:
                counts["grpc_errors"] += 1
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    fail(f"{method._method.decode()}: {error.code().name} {error.details()}", request)
            counts["grpc"] += 1
        elif roll < 0.85:
            requests = [fill(etcdrpc.WatchRequest(), rng) for _ in range(rng.randint(1, 4))]
            try:
                for _ in watch.Watch(iter(requests), timeout=0.5):
                    pass
            except grpc.RpcError as error:
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    fail(f"Watch: {error.code().name} {error.details()}", requests)
            counts["watch"] += 1
        else:
            method, target, body = v2_request(rng)
            try:
                connection = http.client.HTTPConnection(*options.endpoint.rsplit(":", 1), timeout=5)
                connection.request(method, target, body=body,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
                status = connection.getresponse().status
                connection.close()
            except OSError as error:
                fail(f"v2 {method} {target}: {error}", body)
            if status >= 500:
                fail(f"v2 {method} {target}: HTTP {status}", body)
            counts["v2"] += 1
        if sum(counts.values()) % 200 == 0 and not healthy(options.endpoint):
            fail("/health failed", "(after the requests above)")
    if not healthy(options.endpoint):
        fail("/health failed at the end", "")
    print(f"live-requests: {counts['grpc']} gRPC calls ({counts['grpc_errors']} refused with a status), "
          f"{counts['watch']} watch streams, {counts['v2']} v2 requests in {options.seconds:.0f} s, seed {options.seed}: "
          "every one answered, the server healthy")


if __name__ == "__main__":
    main()
