"""The same v2 keys requests against two servers (real etcd 3.4 with v2 on, and ours),
each answer printed as one line: status, the v2 headers that must be there, and the JSON
body with store indexes made relative to the server's index before the first request
(etcd 3.4 spends a few on itself at bootstrap) and expiration times masked. The caller
diffs the two outputs. Usage: v2-keys-calls.py PORT
"""
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

port = int(sys.argv[1])
base_url = f"http://127.0.0.1:{port}/v2/keys"
base_index = None


def call(method, path, form=None, query=None):
    url = base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def relative(value):
    return value - base_index if isinstance(value, int) and value > 0 else value


def normalize(body):
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()

    def walk(node):
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in ("modifiedIndex", "createdIndex", "index"):
                    out[key] = relative(value)
                elif key == "cause" and isinstance(value, str):
                    # "[prevIndex != modifiedIndex]": the node's index is relative too.
                    out[key] = re.sub(r"\[(\d+) != (\d+)\]", lambda m: f"[{m.group(1)} != {relative(int(m.group(2)))}]", value)
                elif key == "expiration":
                    out[key] = "EXPIRATION"
                elif key == "key" and isinstance(value, str):
                    # In-order keys are named by the index: relative too.
                    match = re.fullmatch(r"(.*/)(\d{20})", value)
                    out[key] = f"{match.group(1)}+{int(match.group(2)) - base_index}" if match else value
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            # Unsorted listings come in Go's random map order from etcd: compare as sets
            # (sorted order itself is checked through `etcdctl ls --sort`).
            return sorted((walk(item) for item in node), key=lambda item: json.dumps(item, sort_keys=True))
        return node

    return json.dumps(walk(document), sort_keys=False)


def show(label, method, path, form=None, query=None):
    status, headers, body = call(method, path, form, query)
    present = [name for name in ("X-Etcd-Index", "X-Etcd-Cluster-Id", "X-Raft-Index", "X-Raft-Term") if name in headers]
    print(f"{label}: {status} {present} {normalize(body)}")


# The index before anything: a set and its answer tell it.
status, headers, body = call("PUT", "/probe", {"value": "p"})
base_index = json.loads(body)["node"]["modifiedIndex"]
call("DELETE", "/probe")
base_index += 1

show("set", "PUT", "/a/b", {"value": "1"})
show("set again", "PUT", "/a/b", {"value": "2"})
show("get", "GET", "/a/b")
show("get dir", "GET", "/a")
show("get missing", "GET", "/none")
show("create existing", "PUT", "/a/b", {"value": "3"}, {"prevExist": "false"})
show("create new", "PUT", "/a/c", {"value": "3"}, {"prevExist": "false"})
show("update", "PUT", "/a/c", {"value": "4"}, {"prevExist": "true"})
show("update missing", "PUT", "/a/zz", {"value": "4"}, {"prevExist": "true"})
show("cas bad value", "PUT", "/a/c", {"value": "5"}, {"prevValue": "nope"})
show("cas bad index", "PUT", "/a/c", {"value": "5"}, {"prevIndex": "1"})
show("cas ok", "PUT", "/a/c", {"value": "5"}, {"prevValue": "4"})
show("set on dir", "PUT", "/a", {"value": "x"})
show("under a file", "PUT", "/a/c/d", {"value": "x"})
show("mkdir", "PUT", "/dir", {"dir": "true"})
show("in order 1", "POST", "/queue", {"value": "job1"})
show("in order 2", "POST", "/queue", {"value": "job2"})
show("queue sorted", "GET", "/queue", query={"recursive": "true", "sorted": "true"})
show("hidden", "PUT", "/a/_hidden", {"value": "h"})
show("listing hides", "GET", "/a")
show("recursive", "GET", "/", query={"recursive": "true", "sorted": "true"})
show("delete dir plain", "DELETE", "/a")
show("delete dir not empty", "DELETE", "/a", query={"dir": "true"})
show("cad bad", "DELETE", "/a/c", query={"prevValue": "nope"})
show("cad ok", "DELETE", "/a/c", query={"prevValue": "5"})
show("delete recursive", "DELETE", "/a", query={"recursive": "true"})
show("delete root", "DELETE", "/", query={"recursive": "true"})
show("ttl", "PUT", "/t", {"value": "v", "ttl": "30"})
show("refresh", "PUT", "/t", {"ttl": "60", "refresh": "true", "prevExist": "true"})
show("refresh with value", "PUT", "/t", {"value": "x", "ttl": "60", "refresh": "true"})
show("bad ttl", "PUT", "/t", {"value": "x", "ttl": "abc"})
show("bad bool", "GET", "/t", query={"recursive": "maybe"})
show("bad wait index", "GET", "/t", query={"wait": "true", "waitIndex": "x"})
show("empty prevValue", "PUT", "/t", {"value": "x", "prevValue": ""})
show("short ttl", "PUT", "/gone", {"value": "v", "ttl": "1"})
time.sleep(2.5)
show("expired", "GET", "/gone")

# A wait answered from the history, then one that waits for the next change.
status, headers, body = call("PUT", "/w/x", {"value": "1"})
index = json.loads(body)["node"]["modifiedIndex"]
show("wait from history", "GET", "/w", query={"wait": "true", "recursive": "true", "waitIndex": str(index)})
answers = []
waiter = threading.Thread(target=lambda: answers.append(call("GET", "/w/y", query={"wait": "true"})))
waiter.start()
time.sleep(0.5)
call("PUT", "/w/y", {"value": "2"})
waiter.join(10)
status, headers, body = answers[0] if answers else (0, {}, "")
print(f"wait for next: {status} {normalize(body)}")
show("wait from the past", "GET", "/w", query={"wait": "true", "waitIndex": "1", "recursive": "true"})
