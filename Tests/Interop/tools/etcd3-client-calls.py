"""python3-etcd3's API against one etcd member, each call's outcome printed in a form that
does not depend on IDs, times or Raft terms, so the output against real etcd 3.4 and
against `coreos etcd` can be compared line by line. Usage: etcd3-client-calls.py PORT
"""
import sys
import threading

import etcd3

client = etcd3.client(port=int(sys.argv[1]), timeout=10)


def show(label, action):
    try:
        result = action()
    except Exception as error:  # the exception class and text are part of the comparison
        result = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    print(f"{label}: {result}")


def kv(pair):
    value, meta = pair
    return None if meta is None else (value, meta.key, meta.version, meta.create_revision, meta.mod_revision, meta.lease_id)


def many(pairs):
    return [(value, meta.key, meta.version) for value, meta in pairs]


show("put", lambda: client.put("a/1", "one").header.revision)
show("put prev", lambda: client.put("a/1", "uno", prev_kv=True).prev_kv.value)
show("put 2", lambda: client.put("a/2", "two").header.revision)
show("put 3", lambda: client.put("b/3", "three").header.revision)
show("get", lambda: kv(client.get("a/1")))
show("get missing", lambda: kv(client.get("nope")))
show("get_prefix", lambda: many(client.get_prefix("a/")))
show("get_prefix sorted", lambda: many(client.get_prefix("a/", sort_order="descend", sort_target="value")))
show("get_range", lambda: many(client.get_range("a/1", "b/4")))
show("get_all", lambda: many(client.get_all()))
show("put_if_not_exists new", lambda: client.put_if_not_exists("c", "x"))
show("put_if_not_exists old", lambda: client.put_if_not_exists("c", "y"))
show("replace ok", lambda: client.replace("c", "x", "z"))
show("replace stale", lambda: client.replace("c", "x", "w"))
show("transaction", lambda: [len(r) if isinstance(r, list) else r.__class__.__name__ for r in client.transaction(
    compare=[client.transactions.value("c") == "z", client.transactions.version("a/1") > 1],
    success=[client.transactions.put("t", "yes"), client.transactions.get("a/1")],
    failure=[client.transactions.put("t", "no")])[1]])
show("transaction result", lambda: kv(client.get("t")))
show("delete", lambda: client.delete("b/3"))
show("delete missing", lambda: client.delete("b/3"))
show("delete prev", lambda: client.delete("t", prev_kv=True, return_response=True).prev_kvs[0].value)
show("delete_prefix", lambda: client.delete_prefix("a/").deleted)
lease = client.lease(60)
show("lease ttl", lambda: lease.ttl)
show("lease put", lambda: client.put("leased", "v", lease=lease).header.revision)
show("lease keys", lambda: [key for key in lease.keys])
show("lease refresh", lambda: [r.TTL for r in lease.refresh()])
show("lease remaining", lambda: 55 <= lease.remaining_ttl <= 60)
show("lease revoke", lambda: lease.revoke())
show("lease after revoke", lambda: kv(client.get("leased")))
show("lease info missing", lambda: client.get_lease_info(123456).TTL)
with client.lock("resource", ttl=10) as lock:
    show("lock held", lambda: lock.is_acquired())
show("lock released", lambda: lock.is_acquired())


def later():
    import time
    time.sleep(0.5)
    client.put("w", "fired")


threading.Thread(target=later).start()
show("watch_once", lambda: (lambda e: (type(e).__name__, e.key, e.value))(client.watch_once("w", timeout=5)))
show("compact", lambda: client.compact(3) is None)
show("members", lambda: [(m.name, list(m.peer_urls)) for m in client.members])
show("status", lambda: (lambda s: (s.version, s.leader.name, s.raft_term > 0))(client.status()))
show("alarms", lambda: list(client.list_alarms()))
show("defragment", lambda: client.defragment().__class__.__name__)
