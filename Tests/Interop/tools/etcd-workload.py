"""A concurrent client workload against an etcd cluster, recording a history for the
linearizability checker, and every acknowledged write-once key for the durability check.

Usage: etcd-workload.py SECONDS HISTORY_FILE ACKED_FILE HOST:PORT...
Each of the client threads works on a few shared registers (puts of unique values and
linearizable gets) and writes keys of its own that are never overwritten. A failed put
is recorded with an unknown outcome (it may still have taken effect); a failed get is
left out. On an error a client moves to another endpoint.
"""
import json
import random
import sys
import threading
import time

import etcd3

seconds = float(sys.argv[1])
history_path, acked_path = sys.argv[2], sys.argv[3]
endpoints = [(e.rsplit(":", 1)[0], int(e.rsplit(":", 1)[1])) for e in sys.argv[4:]]
CLIENTS = 6
REGISTERS = [f"reg/{i}" for i in range(4)]
lock = threading.Lock()
history = []
acked = []
errors = {"put": 0, "get": 0}
start = time.monotonic()


def now():
    return time.monotonic() - start


def client(number):
    rng = random.Random(number)
    endpoint = endpoints[number % len(endpoints)]
    connection = etcd3.client(host=endpoint[0], port=endpoint[1], timeout=3)
    sequence = 0
    while now() < seconds:
        sequence += 1
        choice = rng.random()
        try:
            if choice < 0.25:
                key = f"own/{number}/{sequence}"
                connection.put(key, "x")
                with lock:
                    acked.append(key)
                continue
            key = rng.choice(REGISTERS)
            if choice < 0.6:
                value = f"{number}.{sequence}"
                op = {"key": key, "kind": "write", "value": value, "call": now(), "return": None}
                try:
                    connection.put(key, value)
                    op["return"] = now()
                finally:
                    with lock:
                        history.append(op)
            else:
                call = now()
                value, _ = connection.get(key)
                op = {"key": key, "kind": "read", "value": value.decode() if value is not None else None,
                      "call": call, "return": now()}
                with lock:
                    history.append(op)
        except Exception:
            with lock:
                errors["put" if choice < 0.6 else "get"] += 1
            endpoint = rng.choice(endpoints)
            try:
                connection.close()
            except Exception:
                pass
            connection = etcd3.client(host=endpoint[0], port=endpoint[1], timeout=3)
            time.sleep(0.05)


threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with open(history_path, "w") as handle:
    for op in history:
        handle.write(json.dumps(op) + "\n")
with open(acked_path, "w") as handle:
    handle.write("\n".join(acked) + "\n")
completed = sum(1 for op in history if op["return"] is not None)
print(f"workload: {completed} operations acknowledged, {len(history) - completed} writes with unknown outcome, "
      f"{len(acked)} write-once keys acknowledged, errors {errors}")
