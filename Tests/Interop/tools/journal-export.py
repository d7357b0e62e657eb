#!/usr/bin/env python3
"""Writes N journal entries in systemd's Journal Export Format on stdout, for
systemd-journal-remote to turn into a real journal file (no journald needed).

The entries look like a node's: three boots over the last 48 hours ending a few minutes
ago, 20 units, identifiers, PIDs, hostnames, priorities with a realistic spread, kernel
messages, and the hard cases of the output formats: multi-line messages, a message with a
control byte, a non-UTF-8 field, a repeated field, a long field, entries without PID or
identifier, quotes and backslashes. Deterministic for a seed.

usage: journal-export.py COUNT [SEED]
"""
import random
import struct
import sys
import time

count = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
out = sys.stdout.buffer

end = int(time.time() * 1_000_000) - 5 * 60 * 1_000_000
start = end - 48 * 3600 * 1_000_000
boots = ["%032x" % rng.getrandbits(128) for _ in range(3)]
machine = "%032x" % rng.getrandbits(128)
priorities = [0] * 1 + [1] * 2 + [2] * 5 + [3] * 30 + [4] * 80 + [5] * 100 + [6] * 680 + [7] * 102


def field(name, value):
    if isinstance(value, str):
        value = value.encode()
    if b"\n" in value:
        out.write(name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n")
    else:
        out.write(name.encode() + b"=" + value + b"\n")


for index in range(count):
    realtime = start + (end - start) * index // max(count - 1, 1)
    boot = min(index * 3 // count, 2)
    boot_start = start + (end - start) * boot // 3
    monotonic = 1_000_000 + realtime - boot_start
    unit = rng.randrange(20)
    kind = rng.random()
    field("__REALTIME_TIMESTAMP", str(realtime))
    field("__MONOTONIC_TIMESTAMP", str(monotonic))
    field("_BOOT_ID", boots[boot])
    field("_MACHINE_ID", machine)
    if kind < 0.02:
        field("_TRANSPORT", "kernel")
        field("SYSLOG_IDENTIFIER", "kernel")
        field("PRIORITY", str(rng.choice([3, 4, 5, 6])))
        field("_HOSTNAME", "node1")
        field("MESSAGE", "usb 1-1: new device number %d" % index)
        out.write(b"\n")
        continue
    field("_HOSTNAME", "node%d" % (1 + boot % 2))
    field("_TRANSPORT", rng.choice(["journal", "stdout", "syslog"]))
    field("PRIORITY", str(rng.choice(priorities)))
    field("SYSLOG_FACILITY", "3")
    pid = str(1000 + unit * 7)
    if kind < 0.03:
        # No identifier and no PID: journalctl prints _COMM, or "unknown".
        if kind < 0.025:
            field("_COMM", "commonly")
    else:
        field("SYSLOG_IDENTIFIER", "unit%dd" % unit)
        field("_PID", pid)
        field("_COMM", "unit%dd" % unit)
    field("_UID", "0")
    field("_GID", "0")
    # unit 0 runs a binary that exists, so that path operands (`journalctl /usr/bin/env`) match.
    field("_EXE", "/usr/bin/env" if unit == 0 else "/usr/bin/unit%dd" % unit)
    field("_SYSTEMD_UNIT", "unit%d.service" % unit)
    field("_SYSTEMD_SLICE", "system.slice")
    field("_SYSTEMD_CGROUP", "/system.slice/unit%d.service" % unit)
    if kind < 0.04:
        field("CODE_FILE", "src/main.c")
        field("CODE_LINE", str(rng.randrange(1, 999)))
        field("CODE_FUNC", "main")
    if 0.04 <= kind < 0.05:
        field("TAG", "alpha")
        field("TAG", "beta")
    if 0.05 <= kind < 0.055:
        field("BLOB", bytes([255, 254, 0, 65, 14]))
    if 0.055 <= kind < 0.06:
        field("LONG", "x" * 5000)
    if 0.06 <= kind < 0.065:
        field("MESSAGE", "first line of %d\nsecond line\n\nfourth \"quoted\" \\ line" % index)
    elif 0.065 <= kind < 0.07:
        field("MESSAGE", "bell \x07 in %d" % index)
    elif 0.07 <= kind < 0.072:
        pass  # no MESSAGE at all
    elif 0.072 <= kind < 0.075:
        # PID 1 about a unit, with a catalog entry (`-x` prints its text).
        field("MESSAGE_ID", "7d4958e842da4a758f6c1cdc7b36dcc5")
        field("UNIT", "unit%d.service" % unit)
        field("MESSAGE", "Starting unit%d.service..." % unit)
    else:
        word = rng.choice(["started", "stopped", "timeout waiting for peer", "Listening on", "ünïcödé", "compacted"])
        field("MESSAGE", "%s request %d took %d ms" % (word, index, rng.randrange(1000)))
    out.write(b"\n")
