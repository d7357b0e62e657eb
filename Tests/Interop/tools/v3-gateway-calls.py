"""The same v3 JSON gateway requests against two servers (real etcd 3.4 and ours), each
answer printed as one line: status, content type, and the JSON body with its key order
kept and the values that must differ between two clusters masked (IDs, terms, sizes,
hashes, versions). Streams (watch, lease keep-alive) print each line they carry. The
caller diffs the two outputs. Usage: v3-gateway-calls.py PORT
"""
import base64
import http.client
import json
import socket
import sys
import threading
import time
from collections import OrderedDict

port = int(sys.argv[1])
MASKED = {"cluster_id", "member_id", "raft_term", "ID", "id", "raftIndex", "raft_index", "dbSize", "dbSizeInUse",
          "leader", "version", "hash", "name", "raftTerm", "memberID", "TTL", "ttl", "grantedTTL", "watch_id",
          "clientURLs", "peerURLs", "raftAppliedIndex"}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def mask(node):
    if isinstance(node, dict):
        out = OrderedDict()
        for key, value in node.items():
            if key in MASKED:
                out[key] = "MASKED"
            else:
                out[key] = mask(value)
        return out
    if isinstance(node, list):
        return [mask(item) for item in node]
    return node


def show(text):
    try:
        document = json.loads(text, object_pairs_hook=OrderedDict)
    except ValueError:
        return repr(text)
    return json.dumps(mask(document), separators=(",", ":"))


def post(path, body, headers=None, method="POST"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    payload = response.read().decode(errors="replace")
    connection.close()
    # Header names in order, with values except those that must differ (date, length).
    headers = [f"{name}" if name in ("Date", "Content-Length") else f"{name}={value}" for name, value in response.getheaders()]
    return response.status, ";".join(headers), payload


def call(label, path, body, **options):
    status, content_type, payload = post(path, body, **options)
    print(f"{label}: {status} {show(payload)}")
    print(f"  headers: {content_type}")
    return payload


def stream(label, path, body, lines, during=None):
    """Reads `lines` lines of a streamed answer; `during` runs after the first."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = json.dumps(body).encode()
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    reader = sock.makefile("rb")
    status = reader.readline().decode().split(" ", 2)[1]
    headers = {}
    while True:
        line = reader.readline().decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    print(f"{label}: {status} {headers.get('content-type')} transfer-encoding={headers.get('transfer-encoding')}")
    if headers.get("transfer-encoding") != "chunked":
        # Refused before streaming (a request that does not decode): one plain body.
        print(f"{label} body: {show(reader.read(int(headers.get('content-length', '0'))).decode())}")
        sock.close()
        return
    buffered = b""
    seen = 0
    while seen < lines:
        size = int(reader.readline().strip(), 16)
        if size == 0:
            print(f"{label}: end of stream")
            break
        buffered += reader.read(size)
        reader.readline()
        while b"\n" in buffered and seen < lines:
            line, _, buffered = buffered.partition(b"\n")
            print(f"{label} line {seen}: {show(line.decode())}")
            seen += 1
            if seen == 1 and during:
                during()
    sock.close()


# KV
call("put", "/v3/kv/put", {"key": b64("foo"), "value": b64("bar")})
call("put prev_kv", "/v3/kv/put", {"key": b64("foo"), "value": b64("baz"), "prev_kv": True})
call("put camelCase", "/v3/kv/put", {"key": b64("foo2"), "value": b64("x"), "prevKv": True})
call("range", "/v3/kv/range", {"key": b64("foo")})
call("range prefix sorted", "/v3/kv/range",
     {"key": b64("foo"), "range_end": b64("fop"), "sort_order": "DESCEND", "sort_target": "KEY"})
call("range count_only", "/v3/kv/range", {"key": b64("f"), "range_end": b64("g"), "count_only": True})
call("range keys_only limit", "/v3/kv/range", {"key": b64("f"), "range_end": b64("g"), "keys_only": True, "limit": 1})
call("range missing", "/v3/kv/range", {"key": b64("nothing")})
call("range revision as string", "/v3/kv/range", {"key": b64("foo"), "revision": "2"})
call("v3beta range", "/v3beta/kv/range", {"key": b64("foo")})
call("txn success", "/v3/kv/txn", {
    "compare": [{"target": "VALUE", "key": b64("foo"), "value": b64("baz"), "result": "EQUAL"}],
    "success": [{"request_put": {"key": b64("foo"), "value": b64("qux")}}, {"request_range": {"key": b64("foo")}}],
    "failure": [{"request_range": {"key": b64("foo")}}]})
call("txn failure", "/v3/kv/txn", {
    "compare": [{"target": "CREATE", "key": b64("foo"), "create_revision": "1", "result": "GREATER"},
                {"target": "VERSION", "key": b64("foo"), "version": "99", "result": "EQUAL"}],
    "success": [{"request_delete_range": {"key": b64("foo")}}],
    "failure": [{"request_range": {"key": b64("foo"), "keys_only": True}}]})
call("txn with an empty operation", "/v3/kv/txn", {"success": [{}]})
call("txn with an empty operation nested", "/v3/kv/txn",
     {"success": [{"request_txn": {"failure": [{"request_range": {"key": b64("foo")}}, {}]}}]})
call("nested txn", "/v3/kv/txn",
     {"success": [{"request_txn": {"success": [{"request_range": {"key": b64("foo")}}]}}]})
call("deleterange prev_kv", "/v3/kv/deleterange", {"key": b64("foo2"), "prev_kv": True})
call("deleterange none", "/v3/kv/deleterange", {"key": b64("foo2")})

# Leases
lease = json.loads(call("lease grant", "/v3/lease/grant", {"TTL": 60}))
lease_id = lease["ID"]
call("put with lease", "/v3/kv/put", {"key": b64("leased"), "value": b64("v"), "lease": lease_id})
call("lease timetolive", "/v3/lease/timetolive", {"ID": lease_id, "keys": True})
call("kv lease timetolive", "/v3/kv/lease/timetolive", {"ID": lease_id})
call("lease leases", "/v3/lease/leases", {})
stream("lease keepalive", "/v3/lease/keepalive", {"ID": lease_id}, 2)
call("lease revoke", "/v3/lease/revoke", {"ID": lease_id})
call("lease revoke again", "/v3/lease/revoke", {"ID": lease_id})
call("lease timetolive unknown", "/v3/lease/timetolive", {"ID": "12345"})
call("range leased after revoke", "/v3/kv/range", {"key": b64("leased")})

# Watch: created, then the put made after it.
stream("watch", "/v3/watch", {"create_request": {"key": b64("w"), "prev_kv": True}}, 3,
       during=lambda: (time.sleep(0.3), post("/v3/kv/put", {"key": b64("w"), "value": b64("1")}),
                       post("/v3/kv/put", {"key": b64("w"), "value": b64("2")})))
stream("watch from revision", "/v3/watch", {"create_request": {"key": b64("w"), "start_revision": "1"}}, 2)
stream("watch with a bad base64", "/v3/watch", {"create_request": {"key": "%%%"}}, 1)

# Compaction, then a read below it.
call("compaction", "/v3/kv/compaction", {"revision": "3"})
call("range compacted", "/v3/kv/range", {"key": b64("foo"), "revision": "2"})
stream("watch from a compacted revision", "/v3/watch", {"create_request": {"key": b64("foo"), "start_revision": "2"}}, 2)
call("range future", "/v3/kv/range", {"key": b64("foo"), "revision": "1000"})

# Cluster and maintenance
call("member list", "/v3/cluster/member/list", {})
call("status", "/v3/maintenance/status", {})
call("alarm get", "/v3/maintenance/alarm", {"action": "GET"})
call("hash", "/v3/maintenance/hash", {})
call("auth user list (auth off)", "/v3/auth/user/list", {})
call("auth role list (auth off)", "/v3/auth/role/list", {})

# Lock and election over a lease with a chosen ID (the same key on both servers).
call("lease grant with id", "/v3/lease/grant", {"TTL": 60, "ID": "4660"})
call("lock", "/v3/lock/lock", {"name": b64("mylock"), "lease": "4660"})
call("range lock key", "/v3/kv/range", {"key": b64("mylock/1234")})
call("unlock", "/v3/lock/unlock", {"key": b64("mylock/1234")})
call("lock without name", "/v3/lock/lock", {"lease": "4660"})
call("election leader none", "/v3/election/leader", {"name": b64("vote")})
campaign = call("campaign", "/v3/election/campaign", {"name": b64("vote"), "lease": "4660", "value": b64("first")})
leader_key = json.loads(campaign)["leader"]
call("election leader", "/v3/election/leader", {"name": b64("vote")})
call("proclaim", "/v3/election/proclaim", {"leader": leader_key, "value": b64("second")})
stream("observe", "/v3/election/observe", {"name": b64("vote")}, 2,
       during=lambda: (time.sleep(0.3), post("/v3/election/proclaim", {"leader": leader_key, "value": b64("third")})))
call("resign", "/v3/election/resign", {"leader": leader_key})
call("resign without a leader", "/v3/election/resign", {})
call("proclaim without a leader", "/v3/election/proclaim", {"value": b64("x")})
call("proclaim after resign", "/v3/election/proclaim", {"leader": leader_key, "value": b64("x")})
call("election leader after resign", "/v3/election/leader", {"name": b64("vote")})

# Bad input: nothing may change.
call("empty key", "/v3/kv/put", {"key": "", "value": b64("v")})
call("malformed json", "/v3/kv/put", "{not json")
call("wrong base64", "/v3/kv/put", {"key": "***", "value": b64("v")})
call("wrong type", "/v3/kv/range", {"key": b64("foo"), "limit": "many"})
call("empty body", "/v3/kv/range", "")
call("unknown field", "/v3/kv/range", {"key": b64("foo"), "no_such_field": 1})
call("negative lease ttl", "/v3/lease/grant", {"TTL": -5})
call("unknown path", "/v3/kv/nothing", {})
call("get method", "/v3/kv/range", "", method="GET")
call("value over the request limit", "/v3/kv/put", {"key": b64("big"), "value": base64.b64encode(b"x" * 2_000_000).decode()})
call("txn with a bad base64 inside", "/v3/kv/txn", {"success": [{"request_put": {"key": "%%%", "value": b64("v")}}]})
call("bad enum name", "/v3/kv/range", {"key": b64("foo"), "sort_order": "SIDEWAYS"})
call("range after bad input", "/v3/kv/range", {"key": b64("f"), "range_end": b64("g"), "count_only": True})
