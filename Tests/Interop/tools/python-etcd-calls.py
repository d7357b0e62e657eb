"""python-etcd (Debian python3-etcd, the v2 client of old tools) against one server: each
call's outcome printed as a line, indexes relative to the first write. The caller runs it
against real etcd 3.4 (v2 on) and ours and diffs. Usage: python-etcd-calls.py PORT
"""
import re
import sys
import threading
import time

import etcd

client = etcd.Client(host="127.0.0.1", port=int(sys.argv[1]), protocol="http")
base = None


def relative_key(key):
    """In-order keys are named by the store index: relative too."""
    match = re.fullmatch(r"(.*/)(\d{20})", key or "")
    return f"{match.group(1)}+{int(match.group(2)) - base}" if match else key


def show(label, call):
    global base
    try:
        result = call()
    except etcd.EtcdException as error:
        print(f"{label}: {type(error).__name__}: {error.payload.get('message') if getattr(error, 'payload', None) else error}")
        return None
    if isinstance(result, etcd.EtcdResult):
        if base is None:
            base = result.modifiedIndex - 1
        children = sorted((relative_key(child.key), child.value) for child in result.leaves) if result.dir else None
        print(f"{label}: {result.action} {relative_key(result.key)} value={result.value!r} dir={result.dir} ttl={result.ttl} "
              f"modified=+{result.modifiedIndex - base} children={children}")
    else:
        print(f"{label}: {result!r}")
    return result


show("write", lambda: client.write("/py/a", "1"))
show("read", lambda: client.read("/py/a"))
show("update by value", lambda: client.test_and_set("/py/a", "2", "1"))
show("compare-and-swap fails (412, 101)", lambda: client.test_and_set("/py/a", "3", "1"))
show("prevExist=false on an existing key (412, 105)", lambda: client.write("/py/a", "x", prevExist=False))
show("prevExist=true on a missing key (404, 100)", lambda: client.write("/py/none", "x", prevExist=True))
show("prevIndex mismatch", lambda: client.write("/py/a", "x", prevIndex=1))
show("mkdir", lambda: client.write("/py/dir", None, dir=True))
show("write in dir", lambda: client.write("/py/dir/b", "b"))
show("in-order append", lambda: client.write("/py/queue", "job", append=True))
show("recursive read", lambda: client.read("/py", recursive=True))
show("delete a dir without recursive (403, 102)", lambda: client.delete("/py/dir"))
show("delete recursive", lambda: client.delete("/py/dir", recursive=True))
show("compare-and-delete fails", lambda: client.delete("/py/a", prevValue="nope"))
show("ttl write", lambda: client.write("/py/ttl", "t", ttl=1))
time.sleep(2.5)
show("read after the ttl ran out (404, 100)", lambda: client.read("/py/ttl"))

# A wait from an old index returns the event from the history.
first = client.write("/py/w", "0")
client.write("/py/w", "1")
show("wait from an old index", lambda: client.read("/py/w", wait=True, waitIndex=first.modifiedIndex))


# A wait for the next change.
def later():
    time.sleep(0.5)
    client.write("/py/w", "2")


threading.Thread(target=later).start()
show("wait for the next change", lambda: client.read("/py/w", wait=True, timeout=10))

# After more than 1000 events, the oldest index is gone: 401.
for number in range(1010):
    client.write("/py/many", str(number))
show("wait from an index older than the window (401)", lambda: client.read("/py/w", wait=True, waitIndex=first.modifiedIndex))
show("machines", lambda: [machine.replace(sys.argv[1], "PORT") for machine in client.machines])
show("leader present", lambda: bool(client.leader))
