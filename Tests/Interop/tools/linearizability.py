"""A linearizability checker for histories of read/write registers (one per key).

Linearizability is compositional, so each key is checked on its own: the search of Wing
and Gong as improved by Lowe (the P-compositionality-free "WGL" algorithm with a cache of
(linearized set, state) pairs). An operation is a dict:
  {"key", "kind": "write"|"read", "value", "call", "return"}
with `return` None when its outcome is unknown (a write that timed out may have taken
effect at any point after its call, or never). Failed reads are left out by the caller.

Run as a program it checks a history file (JSON lines) and exits 1 on a violation; with
`--self-test` it first proves it tells linearizable and non-linearizable histories apart.
"""
import json
import sys
from collections import defaultdict

INFINITY = float("inf")


def check_register(operations, initial=None):
    """True when the operations on one register have a linearization."""
    # Events: (time, is_return, index). Calls sort before returns at equal times, so
    # operations touching in time count as concurrent (the safe reading).
    events = []
    for index, op in enumerate(operations):
        events.append((op["call"], 0, index))
        events.append((op["return"] if op["return"] is not None else INFINITY, 1, index))
    events.sort()
    # A doubly linked list of events behind a sentinel head (index `count`).
    count = len(events)
    head = count
    nxt_list = [i + 1 for i in range(count)] + [0 if count else None]
    nxt_list[count - 1] = None
    prv = [i - 1 for i in range(count)] + [None]
    prv[0] = head
    return_position = {}
    for position, (_, is_return, index) in enumerate(events):
        if is_return:
            return_position[index] = position

    def lift(position):
        index = events[position][2]
        for p in (position, return_position[index]):
            before, after = prv[p], nxt_list[p]
            nxt_list[before] = after
            if after is not None:
                prv[after] = before

    def unlift(position):
        index = events[position][2]
        for p in (return_position[index], position):
            before, after = prv[p], nxt_list[p]
            nxt_list[before] = p
            if after is not None:
                prv[after] = p

    state = initial
    linearized = 0
    cache = set()
    stack = []
    entry = nxt_list[head]
    while nxt_list[head] is not None:
        if entry is None:
            return False
        _, is_return, index = events[entry]
        if not is_return:
            op = operations[index]
            if op["kind"] == "write":
                ok, new_state = True, op["value"]
            else:
                ok, new_state = op["value"] == state, state
            bit = 1 << index
            if ok and (linearized | bit, new_state) not in cache:
                cache.add((linearized | bit, new_state))
                stack.append((entry, state))
                state = new_state
                linearized |= bit
                lift(entry)
                entry = nxt_list[head]
            else:
                entry = nxt_list[entry]
        else:
            # An operation returned before anything could be linearized: back up.
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << events[entry][2])
            unlift(entry)
            entry = nxt_list[entry]
    return True


def bound_unknown_writes(operations):
    """Writes whose outcome is unknown, made tractable when every write of the register
    has its own value (the workloads write unique values). An unknown write whose value no
    read returned may be taken as never applied, so it is left out; one whose value was
    read took effect before the earliest of those reads returned, so that is its return.
    Neither changes the answer, but an unknown write otherwise stays concurrent with
    everything after it, and a long history with a few dozen of them exhausts the search's
    memory (a 40 s workload needed more than 24 GiB)."""
    values = [op["value"] for op in operations if op["kind"] == "write"]
    if len(values) != len(set(values)):
        return operations
    first_read_return = {}
    for op in operations:
        if op["kind"] == "read" and op["value"] is not None:
            seen = first_read_return.get(op["value"])
            first_read_return[op["value"]] = op["return"] if seen is None else min(seen, op["return"])
    bounded = []
    for op in operations:
        if op["kind"] == "write" and op["return"] is None:
            if op["value"] not in first_read_return:
                continue
            op = dict(op, **{"return": max(first_read_return[op["value"]], op["call"])})
        bounded.append(op)
    return bounded


def check_history(operations):
    """The keys whose register history is not linearizable."""
    by_key = defaultdict(list)
    for op in operations:
        by_key[op["key"]].append(op)
    return sorted(key for key, ops in by_key.items() if not check_register(bound_unknown_writes(ops)))


def self_test():
    w = lambda v, c, r: {"key": "k", "kind": "write", "value": v, "call": c, "return": r}
    r = lambda v, c, t: {"key": "k", "kind": "read", "value": v, "call": c, "return": t}
    good = [
        [w("a", 0, 1), r("a", 2, 3)],
        [w("a", 0, 10), r("a", 1, 2), r(None, 0.5, 0.6)],  # concurrent write: both reads fine
        [w("a", 0, None), r(None, 1, 2), r("a", 3, 4)],  # unknown write lands late
        [w("a", 0, None), r(None, 1, 2)],  # unknown write never lands
        [w("a", 0, 1), w("b", 2, 5), r("b", 3, 4), r("b", 6, 7)],
    ]
    bad = [
        [w("a", 0, 1), r(None, 2, 3)],  # a completed write lost
        [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)],  # stale read
        [w("a", 0, 10), r("a", 1, 2), r(None, 3, 4)],  # value seen, then unseen
        [w("a", 0, None), r("a", 1, 2), r(None, 3, 4)],  # the same with an unknown write
        [r("x", 0, 1)],  # a value never written
    ]
    for history in good:
        assert check_register(history), f"rejected a linearizable history: {history}"
        assert not check_history(history), f"rejected a linearizable history once bounded: {history}"
    for history in bad:
        assert not check_register(history), f"accepted a non-linearizable history: {history}"
        assert check_history(history), f"accepted a non-linearizable history once bounded: {history}"
    print(f"checker self-test: {len(good)} linearizable and {len(bad)} non-linearizable histories told apart")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and arguments[0] == "--self-test":
        self_test()
        arguments = arguments[1:]
    for path in arguments:
        with open(path) as handle:
            history = [json.loads(line) for line in handle if line.strip()]
        failures = check_history(history)
        keys = len({op["key"] for op in history})
        if failures:
            print(f"NOT linearizable: keys {failures} of {keys} ({len(history)} operations)")
            sys.exit(1)
        print(f"linearizable: {len(history)} operations on {keys} keys")
