"""Checks of a recorded client history against an etcd cluster's own account of it.

The workload (robustness.py) records every operation with its call and return times on
one monotonic clock; an operation whose outcome the client never learned (a timeout, a
broken connection) has `ret` None. The checks here trust nothing the servers say unless
the clients saw it too:

* `linearizability`: per key (linearizability is compositional), a search for an order
  of the operations that respects real time and the register model below: Wing & Gong's
  search with Lowe's cache of (linearized set, state), as in Porcupine.
* `lost_writes`: every acknowledged write is in the cluster's event log at the revision
  its response carried, with its value.
* `watch_delivery`: every watcher saw the cluster's events for its prefix in revision
  order, each exactly once, without a gap, up to where it stopped.
* `lease_expiry`: no key attached to a lease disappeared before the lease's TTL had
  passed since the client asked for it.

The register model (one per key; the state is the value, None when absent):
  get              observes v         legal when state == v
  put v            -                  state := v
  delete           observes prev      legal when state == prev; state := None
  cas e -> v       succeeded          legal when state == e; state := v
  cas e -> v       failed, saw c      legal when state == c != e
Every response carries the value it saw, so each observation pins the state exactly.
"""
from collections import defaultdict

INFINITY = float("inf")


def _apply(op, state):
    """(legal, new state) of `op` taken at a point where the register holds `state`."""
    kind = op["op"]
    if kind == "get":
        return op["value"] == state, state
    if kind == "put":
        return True, op["value"]
    if kind == "delete":
        if op["ret"] is None:
            return True, None
        return op["prev"] == state, None
    if kind == "cas":
        if op.get("succeeded"):
            return state == op["expect"], op["value"]
        return state == op["current"] and state != op["expect"], state
    raise ValueError(f"unknown operation {kind!r}")


def check_register(operations, initial=None):
    """True when the operations on one register have a linearization (WGL search)."""
    if not operations:
        return True
    # Events (time, is_return, index): a call sorts before a return at the same instant,
    # so operations that touch in time count as concurrent (the reading that accepts more).
    events = []
    for index, op in enumerate(operations):
        events.append((op["call"], 0, index))
        events.append((op["ret"] if op["ret"] is not None else INFINITY, 1, index))
    events.sort()
    count = len(events)
    head = count  # the sentinel before the first event of a doubly linked list
    following = list(range(1, count)) + [None, 0]
    preceding = [head] + list(range(0, count - 1)) + [None]
    return_slot = {}
    for slot, (_, is_return, index) in enumerate(events):
        if is_return:
            return_slot[index] = slot

    def lift(slot):
        for s in (slot, return_slot[events[slot][2]]):
            before, after = preceding[s], following[s]
            following[before] = after
            if after is not None:
                preceding[after] = before

    def unlift(slot):
        for s in (return_slot[events[slot][2]], slot):
            before, after = preceding[s], following[s]
            following[before] = s
            if after is not None:
                preceding[after] = s

    state, linearized = initial, 0
    seen = set()
    stack = []
    entry = following[head]
    while following[head] is not None:
        if entry is None:
            return False
        _, is_return, index = events[entry]
        if not is_return:
            legal, after = _apply(operations[index], state)
            bit = 1 << index
            if legal and (linearized | bit, after) not in seen:
                seen.add((linearized | bit, after))
                stack.append((entry, state))
                state, linearized = after, linearized | bit
                lift(entry)
                entry = following[head]
            else:
                entry = following[entry]
        else:
            # The earliest pending return has nothing left that could go before it.
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << events[entry][2])
            unlift(entry)
            entry = following[entry]
    return True


def observations(operations):
    """Every value a response showed, with the earliest return that showed it."""
    first = {}

    def saw(value, when):
        if value is not None and when is not None:
            first[value] = min(first.get(value, INFINITY), when)

    for op in operations:
        if op["ret"] is None:
            continue
        if op["op"] == "get":
            saw(op["value"], op["ret"])
        elif op["op"] == "delete":
            saw(op["prev"], op["ret"])
        elif op["op"] == "cas":
            saw(op["expect"] if op.get("succeeded") else op.get("current"), op["ret"])
    return first


def bound_unknown_outcomes(operations):
    """The history with operations of unknown outcome made tractable, without changing
    whether it is linearizable (values written are unique and every response shows the
    value it saw):
    * a read or a failed-looking call with no answer constrains nothing: left out;
    * a put or cas whose value nobody ever saw can be placed after everything else, where
      it changes nothing: left out;
    * a put or cas whose value was seen took effect before the first response showing it
      returned: that becomes its return (and a cas seen so succeeded);
    * a delete of unknown outcome stays open to the end (None is not unique).
    Without this an unknown write stays concurrent with everything after it and a long
    history with a few dozen of them exhausts the search."""
    seen = observations(operations)
    bounded = []
    for op in operations:
        if op["ret"] is None and op["op"] in ("get",):
            continue
        if op["ret"] is None and op["op"] in ("put", "cas"):
            if op["value"] not in seen:
                continue
            op = dict(op, ret=max(seen[op["value"]], op["call"]))
            if op["op"] == "cas":
                op["succeeded"] = True
        bounded.append(op)
    return bounded


def linearizability(history):
    """The keys whose history has no linearization (empty when all are linearizable)."""
    by_key = defaultdict(list)
    for op in history:
        by_key[op["key"]].append(op)
    return sorted(key for key, ops in by_key.items() if not check_register(bound_unknown_outcomes(ops)))


def lost_writes(history, events):
    """Acknowledged writes missing from the cluster's event log: (key, value, revision)."""
    logged = {(e["rev"], e["key"]): e for e in events}
    missing = []
    for op in history:
        if op["ret"] is None or op["op"] not in ("put", "cas", "delete") or op.get("revision") is None:
            continue
        if op["op"] == "cas" and not op.get("succeeded"):
            continue
        if op["op"] == "delete" and op.get("prev") is None:
            continue  # deleting nothing writes no event
        event = logged.get((op["revision"], op["key"]))
        want_type = "DELETE" if op["op"] == "delete" else "PUT"
        want_value = None if op["op"] == "delete" else op["value"]
        if event is None or event["type"] != want_type or event.get("value") != want_value:
            missing.append((op["key"], op.get("value"), op["revision"]))
    return missing


def watch_delivery(watchers, events, prefix_of):
    """Problems with what each watcher received: a list of strings (empty when none).
    `watchers` maps a watcher's name to its received events in order; `prefix_of` maps the
    name to the key prefix it watched from revision 1."""
    problems = []
    for name, received in sorted(watchers.items()):
        prefix = prefix_of[name]
        expected = [(e["rev"], e["key"], e["type"]) for e in events if e["key"].startswith(prefix)]
        got = [(e["rev"], e["key"], e["type"]) for e in received]
        for position, (a, b) in enumerate(zip(got, got[1:])):
            if b[0] < a[0]:
                problems.append(f"{name}: revision {b[0]} after {a[0]} (event {position + 1})")
                break
        if len(set(got)) != len(got):
            problems.append(f"{name}: {len(got) - len(set(got))} events delivered twice")
        if got != expected[: len(got)]:
            first = next(i for i, (a, b) in enumerate(zip(got + [None], expected + [None])) if a != b)
            problems.append(
                f"{name}: event {first} is {got[first] if first < len(got) else 'missing'}, "
                f"the cluster's log has {expected[first] if first < len(expected) else 'nothing'}")
        elif len(got) < len(expected):
            problems.append(f"{name}: stopped after {len(got)} of {len(expected)} events")
    return problems


def lease_expiry(leased, deletions):
    """Keys removed before their lease could have expired: (key, seconds too early).
    `leased` maps a key to (time the grant was called, TTL seconds); `deletions` maps a key
    to the time a watcher received its delete event (which is after the delete)."""
    early = []
    for key, (granted_call, ttl) in sorted(leased.items()):
        removed = deletions.get(key)
        if removed is not None and removed < granted_call + ttl:
            early.append((key, round(granted_call + ttl - removed, 3)))
    return early


def self_test():
    """Proves the checks tell good histories from bad ones; raises AssertionError."""
    def op(kind, call, ret, **fields):
        return dict({"key": "k", "op": kind, "call": call, "ret": ret}, **fields)

    good = [
        [op("put", 0, 1, value="a"), op("get", 2, 3, value="a")],
        [op("put", 0, 10, value="a"), op("get", 1, 2, value="a"), op("get", 0.5, 0.6, value=None)],
        [op("put", 0, None, value="a"), op("get", 1, 2, value=None), op("get", 3, 4, value="a")],
        [op("put", 0, None, value="a"), op("get", 1, 2, value=None)],
        [op("put", 0, 1, value="a"), op("cas", 2, 3, expect="a", value="b", succeeded=True),
         op("cas", 4, 5, expect="a", value="c", succeeded=False, current="b"), op("get", 6, 7, value="b")],
        [op("put", 0, 1, value="a"), op("delete", 2, 3, prev="a"), op("get", 4, 5, value=None)],
        [op("put", 0, 1, value="a"), op("delete", 2, None), op("get", 3, 4, value="a"), op("get", 5, 6, value=None)],
        [op("put", 0, 1, value="a"), op("cas", 2, None, expect="a", value="b"), op("get", 3, 4, value="b")],
    ]
    bad = [
        [op("put", 0, 1, value="a"), op("get", 2, 3, value=None)],  # an acknowledged write lost
        [op("put", 0, 1, value="a"), op("put", 2, 3, value="b"), op("get", 4, 5, value="a")],  # stale read
        [op("put", 0, 10, value="a"), op("get", 1, 2, value="a"), op("get", 3, 4, value=None)],  # seen, then unseen
        [op("put", 0, None, value="a"), op("get", 1, 2, value="a"), op("get", 3, 4, value=None)],
        [op("get", 0, 1, value="x")],  # a value nobody wrote
        [op("put", 0, 1, value="a"), op("cas", 2, 3, expect="z", value="b", succeeded=True)],  # cas on a wrong value
        [op("put", 0, 1, value="a"), op("cas", 2, 3, expect="a", value="b", succeeded=False, current="a")],
        [op("put", 0, 1, value="a"), op("delete", 2, 3, prev=None)],  # delete saw nothing
        [op("put", 0, 1, value="a"), op("cas", 2, None, expect="q", value="b"), op("get", 3, 4, value="b")],
    ]
    for history in good:
        assert not linearizability(history), f"rejected a linearizable history: {history}"
    for history in bad:
        assert linearizability(history), f"accepted a non-linearizable history: {history}"

    events = [{"rev": 2, "key": "k/1", "type": "PUT", "value": "a"},
              {"rev": 3, "key": "k/1", "type": "DELETE", "value": None},
              {"rev": 4, "key": "l/1", "type": "PUT", "value": "x"}]
    acked = [op("put", 0, 1, value="a", revision=2, key="k/1")]
    assert not lost_writes(acked, events)
    assert lost_writes([op("put", 0, 1, value="b", revision=5, key="k/1")], events)
    assert lost_writes([op("put", 0, 1, value="b", revision=2, key="k/1")], events)
    whole = [{"rev": 2, "key": "k/1", "type": "PUT"}, {"rev": 3, "key": "k/1", "type": "DELETE"}]
    assert not watch_delivery({"w": whole}, events, {"w": "k/"})
    assert watch_delivery({"w": whole[:1]}, events, {"w": "k/"})  # stopped short
    assert watch_delivery({"w": [whole[0], whole[0], whole[1]]}, events, {"w": "k/"})  # twice
    assert watch_delivery({"w": [whole[1], whole[0]]}, events, {"w": "k/"})  # out of order
    assert watch_delivery({"w": [whole[1]]}, events, {"w": "k/"})  # a gap
    assert not lease_expiry({"l/1": (10.0, 3)}, {"l/1": 13.2})
    assert lease_expiry({"l/1": (10.0, 3)}, {"l/1": 12.5})
    return len(good), len(bad)


if __name__ == "__main__":
    good, bad = self_test()
    print(f"history checks self-test: {good} linearizable and {bad} non-linearizable histories told apart; "
          "lost writes, watch gaps, duplicates, reordering and early lease expiry detected")
