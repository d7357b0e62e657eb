"""Fault injection against a real etcd cluster (ours or etcd 3.4), with the history checked.

    robustness.py --members 3|5 [--server ours|etcd] [--faults a,b,...|all] [--rounds N]
                  [--inject BUG] [--expect-violation] [--report FILE]

Every member runs in a network namespace of its own, joined to the others by a bridge in
a hub namespace where the clients and this runner live, so a partition is a set of
iptables rules in the members' namespaces and nothing on the host is touched. Concurrent
clients put, get, compare-and-swap and delete on a small key space and attach keys to
leases; watchers follow the keys from revision 1. Faults run one after another with the
workload going; afterwards the cluster is healed and history.py checks the history. See
Documentation/reliability.md for the faults, the checks and the figures.

Needs root (namespaces, iptables, tmpfs), python3-etcd3 (its generated gRPC stubs), and
for the delay fault the nfq-delay helper (--nfq-delay; built by run.sh).
"""
import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from etcd3 import etcdrpc

import history

SUBNET = "10.234.0"
HUB_IP = f"{SUBNET}.1"
CLIENT_PORT, PEER_PORT = 2379, 2380
KEYS = [f"k/{i}" for i in range(12)]
CLONE_NEWNET = 0x40000000
START = time.monotonic()


def now():
    return time.monotonic() - START


def say(text):
    print(f"[{now():7.2f}] {text}", flush=True)


def run(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.returncode}")
    return result


# ---------------------------------------------------------------- the lab network

class Lab:
    """A hub namespace with a bridge and one namespace per member, all removed on close."""

    def __init__(self, tag, count):
        self.hub = f"coreos-rb-{tag}"
        self.members = [f"coreos-rb-{tag}-m{i + 1}" for i in range(count)]
        self.addresses = [f"{SUBNET}.{11 + i}" for i in range(count)]
        self.created = []

    def build(self):
        run("ip", "netns", "add", self.hub)
        self.created.append(self.hub)
        run("ip", "-n", self.hub, "link", "set", "lo", "up")
        run("ip", "-n", self.hub, "link", "add", "rbbr", "type", "bridge")
        run("ip", "-n", self.hub, "addr", "add", f"{HUB_IP}/24", "dev", "rbbr")
        run("ip", "-n", self.hub, "link", "set", "rbbr", "up")
        for index, (namespace, address) in enumerate(zip(self.members, self.addresses)):
            run("ip", "netns", "add", namespace)
            self.created.append(namespace)
            run("ip", "-n", self.hub, "link", "add", f"rbv{index}", "type", "veth", "peer", "name", "eth0",
                "netns", namespace)
            run("ip", "-n", self.hub, "link", "set", f"rbv{index}", "master", "rbbr", "up")
            run("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            run("ip", "-n", namespace, "link", "set", "eth0", "up")
            run("ip", "-n", namespace, "link", "set", "lo", "up")
            # Chains of our own, so healing is one flush and nothing else is touched.
            for chain, hook in (("RB_IN", "INPUT"), ("RB_OUT", "OUTPUT")):
                self.iptables(index, "-N", chain)
                self.iptables(index, "-I", hook, "-j", chain)

    def enter_hub(self):
        """Moves this process (the threads it starts from now on) into the hub."""
        libc = ctypes.CDLL(None, use_errno=True)
        descriptor = os.open(f"/run/netns/{self.hub}", os.O_RDONLY)
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the hub namespace")
        os.close(descriptor)

    def iptables(self, index, *arguments, quiet=False):
        return run("ip", "netns", "exec", self.members[index], "iptables", "-w", *arguments, check=not quiet)

    def heal(self):
        for index in range(len(self.members)):
            self.iptables(index, "-F", "RB_IN")
            self.iptables(index, "-F", "RB_OUT")

    def cut(self, index, others, inbound=True, outbound=True):
        """Drops member `index`'s traffic from (and to) the members in `others`."""
        for other in others:
            if inbound:
                self.iptables(index, "-A", "RB_IN", "-s", self.addresses[other], "-j", "DROP")
            if outbound:
                self.iptables(index, "-A", "RB_OUT", "-d", self.addresses[other], "-j", "DROP")

    def from_peers(self, index, *target):
        """A rule for member `index`'s packets from the other members (not the clients)."""
        if not self.iptables(index, "-C", "RB_IN", "-s", HUB_IP, "-j", "RETURN", quiet=True).returncode == 0:
            self.iptables(index, "-A", "RB_IN", "-s", HUB_IP, "-j", "RETURN")
        self.iptables(index, "-A", "RB_IN", "-s", f"{SUBNET}.0/24", *target)

    def partition(self, groups):
        for group in groups:
            outside = [i for i in range(len(self.members)) if i not in group]
            for index in group:
                self.cut(index, outside)

    def close(self):
        for namespace in reversed(self.created):
            run("ip", "netns", "del", namespace, check=False)


# ---------------------------------------------------------------- the members

class Member:
    def __init__(self, index, lab, options, work):
        self.index = index
        self.name = f"m{index + 1}"
        self.namespace = lab.members[index]
        self.address = lab.addresses[index]
        self.endpoint = f"{self.address}:{CLIENT_PORT}"
        self.directory = os.path.join(work, self.name)
        self.log_path = os.path.join(work, f"{self.name}.log")
        self.options = options
        self.cluster = ",".join(f"m{i + 1}=http://{a}:{PEER_PORT}" for i, a in enumerate(lab.addresses))
        self.process = None
        self.tmpfs = False
        self.member_id = None

    def command(self):
        server = [self.options.binary, "etcd"] if self.options.server == "ours" else [self.options.etcd]
        peer = f"http://{self.address}:{PEER_PORT}"
        return server + [
            "--name", self.name, "--data-dir", self.directory,
            "--listen-client-urls", f"http://{self.endpoint}", "--advertise-client-urls", f"http://{self.endpoint}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", self.cluster, "--initial-cluster-token", "robustness",
            "--heartbeat-interval", "100", "--election-timeout", "1000", "--snapshot-count", "2000",
        ] + self.options.server_flag

    def start(self):
        environment = dict(os.environ)
        if self.options.inject:
            environment["COREOS_INJECT_BUGS"] = self.options.inject
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.namespace}", "--"] + self.command(),
                stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, number):
        if self.alive():
            os.kill(self.process.pid, number)

    def kill(self):
        if self.alive():
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def status(self, timeout=0.5):
        """(member ID, leader ID, revision) from Maintenance.Status, or None."""
        try:
            with grpc.insecure_channel(self.endpoint) as channel:
                reply = etcdrpc.MaintenanceStub(channel).Status(etcdrpc.StatusRequest(), timeout=timeout)
                return reply.header.member_id, reply.leader, reply.header.revision
        except grpc.RpcError:
            return None


class Cluster:
    def __init__(self, lab, options, work):
        self.lab = lab
        self.members = [Member(i, lab, options, work) for i in range(len(lab.members))]

    def endpoints(self):
        return [m.endpoint for m in self.members]

    def leader(self):
        """The member every reachable member agrees leads, or None."""
        votes = {}
        for member in self.members:
            if not member.alive():
                continue
            status = member.status()
            if status is None:
                continue
            member.member_id = status[0]
            if status[1]:
                votes[status[1]] = votes.get(status[1], 0) + 1
        for member in self.members:
            if member.member_id is not None and votes.get(member.member_id, 0) > len(self.members) // 2:
                return member
        return None

    def wait_for_leader(self, seconds, excluding=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader is not excluding:
                return leader
            time.sleep(0.05)
        return None

    def wait_healthy(self, seconds):
        """A leader that every member (all running) recognizes."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            statuses = [m.status() for m in self.members]
            leaders = {s[1] for s in statuses if s}
            if all(statuses) and len(leaders) == 1 and 0 not in leaders:
                return True
            time.sleep(0.1)
        return False

    def follower(self, leader, rng):
        return rng.choice([m for m in self.members if m is not leader])


# ---------------------------------------------------------------- the workload

class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.operations = []
        self.leased = {}
        self.deleted_at = {}

    def add(self, operation):
        with self.lock:
            self.operations.append(operation)


def text(value):
    return value.decode() if value is not None else None


class Client(threading.Thread):
    """Operations on the shared keys with unique values; moves to another member when
    the one it talks to fails."""

    def __init__(self, number, endpoints, recorder, stop, pace):
        super().__init__(daemon=True)
        self.number, self.endpoints, self.recorder, self.stop, self.pace = number, endpoints, recorder, stop, pace
        self.rng = random.Random(number * 7919)
        self.sequence = 0
        self.last_seen = {}

    def connect(self, endpoint):
        self.channel = grpc.insecure_channel(endpoint)
        self.kv = etcdrpc.KVStub(self.channel)
        self.lease = etcdrpc.LeaseStub(self.channel)

    def run(self):
        self.connect(self.endpoints[self.number % len(self.endpoints)])
        while not self.stop.is_set():
            self.sequence += 1
            value = f"c{self.number}.{self.sequence}"
            key = self.rng.choice(KEYS)
            choice = self.rng.random()
            operation = {"client": self.number, "key": key, "call": now(), "ret": None}
            try:
                if choice < 0.35:
                    operation.update(op="get")
                    reply = self.kv.Range(etcdrpc.RangeRequest(key=key.encode()), timeout=2)
                    operation["value"] = text(reply.kvs[0].value) if reply.kvs else None
                    self.last_seen[key] = operation["value"]
                elif choice < 0.60:
                    operation.update(op="put", value=value)
                    self.recorder.add(operation)
                    reply = self.kv.Put(etcdrpc.PutRequest(key=key.encode(), value=value.encode()), timeout=2)
                    operation["revision"] = reply.header.revision
                elif choice < 0.78:
                    expect = self.last_seen.get(key) or value
                    operation.update(op="cas", expect=expect, value=value)
                    self.recorder.add(operation)
                    compare = etcdrpc.Compare(result=etcdrpc.Compare.EQUAL, target=etcdrpc.Compare.VALUE,
                                              key=key.encode(), value=expect.encode())
                    request = etcdrpc.TxnRequest(
                        compare=[compare],
                        success=[etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=key.encode(), value=value.encode()))],
                        failure=[etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=key.encode()))])
                    reply = self.kv.Txn(request, timeout=2)
                    operation["succeeded"] = reply.succeeded
                    operation["revision"] = reply.header.revision
                    if not reply.succeeded:
                        kvs = reply.responses[0].response_range.kvs
                        operation["current"] = text(kvs[0].value) if kvs else None
                        self.last_seen[key] = operation["current"]
                    else:
                        self.last_seen[key] = value
                elif choice < 0.88:
                    operation.update(op="delete")
                    self.recorder.add(operation)
                    reply = self.kv.DeleteRange(etcdrpc.DeleteRangeRequest(key=key.encode(), prev_kv=True), timeout=2)
                    operation["prev"] = text(reply.prev_kvs[0].value) if reply.prev_kvs else None
                    operation["revision"] = reply.header.revision
                    self.last_seen[key] = None
                else:
                    self.leased_put(operation, value)
                    continue
                operation["ret"] = now()
                if operation["op"] == "get":
                    self.recorder.add(operation)
            except grpc.RpcError:
                self.connect(self.rng.choice(self.endpoints))
                time.sleep(0.05)
            if self.pace:
                time.sleep(self.pace)

    def leased_put(self, operation, value):
        """A key on a lease of its own, never kept alive: it must outlive its TTL."""
        ttl = self.rng.choice([2, 3, 4])
        key = f"l/{value}"
        granted = now()
        reply = self.lease.LeaseGrant(etcdrpc.LeaseGrantRequest(TTL=ttl), timeout=2)
        operation.update(op="put", key=key, value=value)
        self.recorder.add(operation)
        with self.recorder.lock:
            self.recorder.leased[key] = (granted, ttl)
        put = self.kv.Put(etcdrpc.PutRequest(key=key.encode(), value=value.encode(), lease=reply.ID), timeout=2)
        operation["revision"] = put.header.revision
        operation["ret"] = now()


class Watcher(threading.Thread):
    """Follows a prefix from revision 1; after a broken stream it resumes at the next
    revision on another member, as a careful client does."""

    def __init__(self, name, prefix, endpoints, recorder, stop):
        super().__init__(daemon=True)
        self.name, self.prefix, self.endpoints, self.recorder, self.stop = name, prefix, endpoints, recorder, stop
        self.events = []
        self.last_revision = 0
        self.endpoint = None
        self.reconnects = 0
        self.cancels = []

    def requests(self, closed):
        end = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=self.prefix.encode(), range_end=end.encode(), start_revision=self.last_revision + 1))
        closed.wait()

    def run(self):
        rng = random.Random(hash(self.name))
        endpoint = rng.choice(self.endpoints)
        while not self.stop.is_set():
            closed = threading.Event()
            self.endpoint = endpoint
            try:
                with grpc.insecure_channel(endpoint) as channel:
                    stream = etcdrpc.WatchStub(channel).Watch(self.requests(closed))
                    self.current = stream
                    for reply in stream:
                        if reply.canceled or reply.compact_revision:
                            # Nothing compacts during a run: a cancel is a server's problem,
                            # counted, and the watcher goes on from where it was.
                            self.cancels.append((now(), endpoint, reply.cancel_reason, reply.compact_revision))
                            break
                        received = now()
                        for event in reply.events:
                            kind = "DELETE" if event.type == 1 else "PUT"
                            key = event.kv.key.decode()
                            self.events.append({"rev": event.kv.mod_revision, "key": key, "type": kind,
                                                "value": text(event.kv.value) if kind == "PUT" else None})
                            self.last_revision = event.kv.mod_revision
                            if kind == "DELETE":
                                with self.recorder.lock:
                                    self.recorder.deleted_at.setdefault(key, received)
                        if self.stop.is_set():
                            break
            except grpc.RpcError:
                pass
            finally:
                closed.set()
            self.reconnects += 1
            endpoint = rng.choice(self.endpoints)
            time.sleep(0.1)

    def cancel(self):
        stream = getattr(self, "current", None)
        if stream is not None:
            stream.cancel()


# ---------------------------------------------------------------- the faults

class Faults:
    """Each fault: `fault_NAME(seconds)` breaks something, waits, and repairs it; it
    returns what it measured."""

    def __init__(self, cluster, lab, options, rng):
        self.cluster, self.lab, self.options, self.rng = cluster, lab, options, rng

    def _leader(self):
        leader = self.cluster.wait_for_leader(15)
        if leader is None:
            raise RuntimeError("no leader before the fault")
        return leader

    def _new_leader_after(self, began, old, limit=20):
        new = self.cluster.wait_for_leader(limit, excluding=old)
        return round(time.monotonic() - began, 3) if new else None

    def fault_kill_leader(self, seconds):
        leader = self._leader()
        began = time.monotonic()
        leader.kill()
        elected = self._new_leader_after(began, leader)
        time.sleep(max(0, seconds - (time.monotonic() - began)))
        leader.start()
        return {"member": leader.name, "new_leader_seconds": elected}

    def fault_kill_follower(self, seconds):
        victim = self.cluster.follower(self._leader(), self.rng)
        victim.kill()
        time.sleep(seconds)
        victim.start()
        return {"member": victim.name}

    def fault_pause_leader(self, seconds):
        leader = self._leader()
        began = time.monotonic()
        leader.signal(signal.SIGSTOP)
        elected = self._new_leader_after(began, leader)
        time.sleep(max(0, seconds - (time.monotonic() - began)))
        leader.signal(signal.SIGCONT)
        return {"member": leader.name, "new_leader_seconds": elected}

    def fault_isolate_leader(self, seconds):
        leader = self._leader()
        began = time.monotonic()
        self.lab.partition([[leader.index]])
        elected = self._new_leader_after(began, leader)
        time.sleep(max(0, seconds - (time.monotonic() - began)))
        self.lab.heal()
        return {"member": leader.name, "new_leader_seconds": elected}

    def fault_minority_partition(self, seconds):
        leader = self._leader()
        followers = [m.index for m in self.cluster.members if m is not leader]
        minority = self.rng.sample(followers, (len(self.cluster.members) - 1) // 2)
        self.lab.partition([minority])
        time.sleep(seconds)
        self.lab.heal()
        return {"cut_off": [self.cluster.members[i].name for i in minority]}

    def fault_leader_in_minority(self, seconds):
        leader = self._leader()
        others = [m.index for m in self.cluster.members if m is not leader]
        side = [leader.index] + self.rng.sample(others, (len(self.cluster.members) - 1) // 2 - 1)
        began = time.monotonic()
        self.lab.partition([side])
        elected = self._new_leader_after(began, leader)
        time.sleep(max(0, seconds - (time.monotonic() - began)))
        self.lab.heal()
        return {"minority": [self.cluster.members[i].name for i in side], "new_leader_seconds": elected}

    def fault_no_quorum(self, seconds):
        indexes = list(range(len(self.cluster.members)))
        self.rng.shuffle(indexes)
        groups = [indexes[i:i + 2] for i in range(0, len(indexes), 2)] if len(indexes) > 3 else [[i] for i in indexes]
        self.lab.partition(groups)
        time.sleep(seconds)
        self.lab.heal()
        return {"groups": [[self.cluster.members[i].name for i in g] for g in groups]}

    def fault_asymmetric(self, seconds):
        """The leader still sends to the others but hears nothing back."""
        leader = self._leader()
        began = time.monotonic()
        self.lab.cut(leader.index, [m.index for m in self.cluster.members if m is not leader], outbound=False)
        elected = self._new_leader_after(began, leader)
        time.sleep(max(0, seconds - (time.monotonic() - began)))
        self.lab.heal()
        return {"member": leader.name, "new_leader_seconds": elected}

    def fault_packet_loss(self, seconds):
        for index in range(len(self.cluster.members)):
            self.lab.from_peers(index, "-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP")
        time.sleep(seconds)
        self.lab.heal()
        return {"loss": 0.3}

    def fault_delay_reorder(self, seconds):
        if not self.options.nfq_delay:
            return {"skipped": "no nfq-delay helper"}
        helpers = []
        try:
            for member in self.cluster.members:
                helpers.append(subprocess.Popen(
                    ["nsenter", f"--net=/run/netns/{member.namespace}", "--", self.options.nfq_delay, "3", "20", "150"],
                    stderr=subprocess.DEVNULL))
                self.lab.from_peers(member.index, "-j", "NFQUEUE", "--queue-num", "3", "--queue-bypass")
            time.sleep(seconds)
        finally:
            self.lab.heal()
            for helper in helpers:
                helper.terminate()
                helper.wait()
        return {"delay_ms": [20, 150]}

    def fault_disk_full(self, seconds):
        victim = next(m for m in self.cluster.members if m.tmpfs)
        filler = os.path.join(victim.directory, "filler")
        with open(filler, "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * (1 << 20))
                    handle.flush()
            except OSError:
                pass
        time.sleep(seconds)
        os.unlink(filler)
        crashed = not victim.alive()
        if crashed:
            victim.start()
        return {"member": victim.name, "member_exited": crashed}

    def fault_slow_disk(self, seconds):
        """The leader's writes throttled to a few I/O operations a second (blkio): at 10
        a second a sync takes about 300 ms, slow enough to starve writes, not enough to
        delay heartbeats past an election timeout (at 4, elections move the leader anyway)."""
        leader = self._leader()
        group = f"/sys/fs/cgroup/blkio/coreos-rb-{os.getpid()}"
        device = block_device_of(leader.directory)
        if device is None or not os.path.isdir("/sys/fs/cgroup/blkio"):
            return {"skipped": "no blkio controller or block device here"}
        os.makedirs(group, exist_ok=True)
        try:
            with open(f"{group}/blkio.throttle.write_iops_device", "w") as handle:
                handle.write(f"{device} {self.options.slow_disk_iops}")
            with open(f"{group}/cgroup.procs", "w") as handle:
                handle.write(str(leader.process.pid))
            began = time.monotonic()
            changed = self._new_leader_after(began, leader, limit=seconds)
            time.sleep(max(0, seconds - (time.monotonic() - began)))
        finally:
            with open("/sys/fs/cgroup/blkio/cgroup.procs", "w") as handle:
                if leader.alive():
                    handle.write(str(leader.process.pid))
            os.rmdir(group)
        return {"member": leader.name, "leader_moved_after_seconds": changed}


def block_device_of(path):
    """"MAJOR:MINOR" of the block device holding `path`, from /proc/self/mountinfo."""
    best, device = "", None
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            mount_point, numbers = fields[4], fields[2]
            if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) >= len(best):
                best, device = mount_point, numbers
    if device is None or device.startswith("0:"):
        return None
    return device


ALL_FAULTS = ["kill_leader", "kill_follower", "pause_leader", "isolate_leader", "minority_partition",
              "leader_in_minority", "no_quorum", "asymmetric", "packet_loss", "delay_reorder", "disk_full"]


# ---------------------------------------------------------------- after the run

def reference_events(member, final_revision, seconds=8):
    """The member's whole event log up to `final_revision`, read by a watch from 1."""
    events = []
    if final_revision <= 1:
        return events
    closed = threading.Event()

    def requests():
        yield etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
            key=b"\0", range_end=b"\0", start_revision=1))
        closed.wait()

    with grpc.insecure_channel(member.endpoint) as channel:
        stream = etcdrpc.WatchStub(channel).Watch(requests(), timeout=seconds)
        try:
            for reply in stream:
                for event in reply.events:
                    kind = "DELETE" if event.type == 1 else "PUT"
                    events.append({"rev": event.kv.mod_revision, "key": event.kv.key.decode(), "type": kind,
                                   "value": text(event.kv.value) if kind == "PUT" else None})
                if events and events[-1]["rev"] >= final_revision:
                    break
        except grpc.RpcError as error:
            # A member that never gets to the final revision: its log is what it is, and
            # the comparison with the others says so.
            events.append({"rev": -1, "key": "", "type": f"UNAVAILABLE: {error.code().name}", "value": None})
        finally:
            closed.set()
            stream.cancel()
    return events


def first_difference(log, reference):
    for position, (mine, theirs) in enumerate(zip(log, reference)):
        if mine != theirs:
            return f"event {position}: {mine} where the leader has {theirs}"
    return f"{len(log)} events where the leader has {len(reference)}"


def hash_kv(member, revision):
    try:
        with grpc.insecure_channel(member.endpoint) as channel:
            reply = etcdrpc.MaintenanceStub(channel).HashKV(etcdrpc.HashKVRequest(revision=revision), timeout=5)
            return reply.hash
    except grpc.RpcError as error:
        return f"unavailable: {error.code().name}"


def availability(operations, windows, baseline):
    """Per fault window: successful and failed writes a second, next to the baseline."""
    figures = []
    for window in windows:
        writes = [op for op in operations if op["op"] != "get" and window["began"] <= op["call"] < window["ended"]]
        ok = sum(1 for op in writes if op["ret"] is not None)
        span = max(window["ended"] - window["began"], 0.001)
        figures.append(dict(window, writes_ok_per_second=round(ok / span, 1),
                            writes_failed_per_second=round((len(writes) - ok) / span, 1),
                            of_baseline=round(ok / span / baseline, 3) if baseline else None))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--server", choices=["ours", "etcd"], default="ours")
    parser.add_argument("--binary", default=os.path.abspath(".build/debug/coreos"))
    parser.add_argument("--etcd", default="/usr/bin/etcd")
    parser.add_argument("--faults", default="all")
    parser.add_argument("--rounds", type=int, default=1, help="times through the fault list (shuffled after the first)")
    parser.add_argument("--fault-seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pace", type=float, default=0.01, help="seconds each client waits between operations")
    parser.add_argument("--slow-disk-iops", type=int, default=10, help="the slow_disk fault's write IOPS limit")
    parser.add_argument("--server-flag", action="append", default=[], help="one more flag for every member")
    parser.add_argument("--inject", default="", help="COREOS_INJECT_BUGS for our members")
    parser.add_argument("--expect-violation", action="store_true", help="succeed only if a check fails")
    parser.add_argument("--nfq-delay", default="")
    parser.add_argument("--report", default="")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    faults = ALL_FAULTS if options.faults == "all" else options.faults.replace("-", "_").split(",")
    unknown = [f for f in faults if f not in ALL_FAULTS + ["slow_disk"]]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(ALL_FAULTS + ['slow_disk'])}")
    rng = random.Random(options.seed)
    say(f"robustness: {options.members} members ({options.server}), faults {','.join(faults)} x{options.rounds}, "
        f"seed {options.seed}{', injected bug ' + options.inject if options.inject else ''}")
    history.self_test()

    work = tempfile.mkdtemp(prefix="coreos-robustness-", dir="/var/tmp")
    lab = Lab(f"{os.getpid() % 100000}", options.members)
    cluster = None
    mounted = None
    threads = []
    try:
        lab.build()
        lab.enter_hub()
        cluster = Cluster(lab, options, work)
        if "disk_full" in faults:
            mounted = cluster.members[-1].directory
            os.makedirs(mounted)
            run("mount", "-t", "tmpfs", "-o", "size=200m,mode=0700", "tmpfs", mounted)
            cluster.members[-1].tmpfs = True
        for member in cluster.members:
            member.start()
        if not cluster.wait_healthy(30):
            raise RuntimeError("the cluster did not form")
        say(f"cluster formed, leader {cluster.leader().name}")

        recorder = Recorder()
        stop = threading.Event()
        endpoints = cluster.endpoints()
        threads = [Client(n, endpoints, recorder, stop, options.pace) for n in range(options.clients)]
        # The watchers run until the checks have what the cluster logged, after the clients.
        watchers_stop = threading.Event()
        watchers = [Watcher("watch-k-1", "k/", endpoints, recorder, watchers_stop),
                    Watcher("watch-k-2", "k/", endpoints, recorder, watchers_stop),
                    Watcher("watch-l", "l/", endpoints, recorder, watchers_stop)]
        for thread in threads + watchers:
            thread.start()
        time.sleep(1)
        baseline_start = now()
        time.sleep(4)
        baseline_end = now()
        faulting = Faults(cluster, lab, options, rng)
        windows = []
        for round_number in range(options.rounds):
            order = list(faults) if round_number == 0 else rng.sample(faults, len(faults))
            for fault in order:
                began = now()
                say(f"fault {fault}")
                measured = getattr(faulting, f"fault_{fault}")(options.fault_seconds)
                ended = now()
                healthy = cluster.wait_healthy(30)
                windows.append({"fault": fault, "began": round(began, 3), "ended": round(ended, 3),
                                "recovered": round(now() - ended, 3) if healthy else None, **measured})
                say(f"  {measured}; recovered {'in %.2f s' % (now() - ended) if healthy else 'NOT within 30 s'}")
                if not healthy:
                    for member in cluster.members:
                        if not member.alive():
                            member.start()
                    cluster.wait_healthy(30)
                time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(5)
        # Every lease the clients took must be able to run out before the final log is read.
        time.sleep(6)
        leader = cluster.wait_for_leader(20)
        # A last linearizable read of every register, after everything: a write lost at
        # the end shows up as a history that cannot be linearized.
        if leader is not None:
            with grpc.insecure_channel(leader.endpoint) as channel:
                kv = etcdrpc.KVStub(channel)
                for key in KEYS:
                    call = now()
                    reply = kv.Range(etcdrpc.RangeRequest(key=key.encode()), timeout=5)
                    recorder.add({"client": -1, "key": key, "op": "get", "call": call, "ret": now(),
                                  "value": text(reply.kvs[0].value) if reply.kvs else None})
        final_revision = max((m.status() or (0, 0, 0))[2] for m in cluster.members)
        say(f"checking: final revision {final_revision}, leader {leader.name if leader else 'none'}")
        logs = {m.name: reference_events(m, final_revision) for m in cluster.members}
        reference = logs[(leader or cluster.members[0]).name]
        # The watchers get until they have everything the log has for their prefix.
        deadline = time.monotonic() + 10
        for watcher in watchers:
            last = max((e["rev"] for e in reference if e["key"].startswith(watcher.prefix)), default=0)
            while time.monotonic() < deadline and watcher.last_revision < last:
                time.sleep(0.2)
        watchers_stop.set()
        for watcher in watchers:
            watcher.cancel()
        problems = {}
        different = {name: first_difference(log, reference) for name, log in logs.items() if log != reference}
        if different:
            problems["event_logs_differ"] = different
        hashes = {m.name: hash_kv(m, final_revision) for m in cluster.members}
        if len(set(hashes.values())) != 1:
            problems["hashkv_differ"] = hashes
        operations = recorder.operations
        registers = [op for op in operations if op["key"].startswith("k/")]
        bad_keys = history.linearizability(registers)
        if bad_keys:
            problems["not_linearizable"] = bad_keys
        lost = history.lost_writes(operations, reference)
        if lost:
            problems["acknowledged_writes_lost"] = lost[:20]
        watch_problems = history.watch_delivery(
            {w.name: w.events for w in watchers}, reference, {w.name: w.prefix for w in watchers})
        if watch_problems:
            problems["watch_delivery"] = watch_problems + [
                f"{w.name} last on {w.endpoint} at revision {w.last_revision}" for w in watchers]
        early = history.lease_expiry(recorder.leased, recorder.deleted_at)
        if early:
            problems["lease_expired_early"] = early[:20]
        completed = sum(1 for op in operations if op["ret"] is not None)
        baseline_writes = [op for op in operations if op["op"] != "get" and op["ret"] is not None
                           and baseline_start <= op["call"] < baseline_end]
        baseline = len(baseline_writes) / (baseline_end - baseline_start)
        report = {
            "server": options.server, "members": options.members, "seed": options.seed, "inject": options.inject,
            "operations": len(operations), "completed": completed, "unknown_outcome": len(operations) - completed,
            "events": len(reference), "final_revision": final_revision,
            "watch_events_delivered": {w.name: len(w.events) for w in watchers},
            "watch_reconnects": {w.name: w.reconnects for w in watchers},
            "watch_cancels": {w.name: w.cancels for w in watchers},
            "leases_checked": len([k for k in recorder.leased if k in recorder.deleted_at]),
            "baseline_writes_per_second": round(baseline, 1),
            "faults": availability(operations, windows, baseline), "problems": problems,
        }
        say(f"{len(operations)} operations ({completed} completed, {len(operations) - completed} unknown), "
            f"{len(reference)} events, {report['leases_checked']} lease expiries, {len(windows)} faults")
        for window in report["faults"]:
            say(f"  {window['fault']:20} writes {window['writes_ok_per_second']:7.1f}/s ok "
                f"{window['writes_failed_per_second']:6.1f}/s failed ({window['of_baseline']} of baseline)"
                + (f", new leader in {window['new_leader_seconds']} s" if window.get("new_leader_seconds") else ""))
        if options.report:
            with open(options.report, "w") as handle:
                json.dump(report, handle, indent=1)
        if problems:
            say(f"VIOLATIONS: {json.dumps(problems)[:2000]}")
        else:
            say("no violations: linearizable, no acknowledged write lost, watches complete and in order, "
                "no lease expired early, members identical")
        failed = bool(problems)
        if options.expect_violation:
            say("a violation was expected (bug injected): " + ("found" if failed else "NOT found"))
            return 0 if failed else 1
        return 1 if failed else 0
    finally:
        if cluster is not None:
            for member in cluster.members:
                member.kill()
        if mounted:
            run("umount", mounted, check=False)
        lab.close()
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
