"""Checks a register history written by etcd-workload.py for linearizability.

The checker itself is the robustness suite's (Tests/Robustness/history.py); this reads the
workload's JSON lines ({"key", "kind": "write"|"read", "value", "call", "return"}, return
null when a write's outcome is unknown) and exits 1 when some key has no linearization.
`--self-test` first proves the checker tells good histories from bad ones.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Robustness"))
import history  # noqa: E402


def converted(operation):
    kind = "put" if operation["kind"] == "write" else "get"
    return {"key": operation["key"], "op": kind, "value": operation["value"],
            "call": operation["call"], "ret": operation["return"]}


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments and arguments[0] == "--self-test":
        good, bad = history.self_test()
        print(f"checker self-test: {good} linearizable and {bad} non-linearizable histories told apart")
        arguments = arguments[1:]
    for path in arguments:
        with open(path) as handle:
            operations = [converted(json.loads(line)) for line in handle if line.strip()]
        failures = history.linearizability(operations)
        keys = len({op["key"] for op in operations})
        if failures:
            print(f"NOT linearizable: keys {failures} of {keys} ({len(operations)} operations)")
            sys.exit(1)
        print(f"linearizable: {len(operations)} operations on {keys} keys")
