#!/usr/bin/env python3
"""Writes the cloud-config inputs of the cloudinit tests and benchmark into a directory.

hostile/: documents that took coreos-cloudinit minutes to hours and gigabytes.
sized/:   valid configs of about 100 KB, 1 MB and 6 MB (many write_files and units).
"""
import gzip, os, sys

out = sys.argv[1]
os.makedirs(out + "/hostile", exist_ok=True)
os.makedirs(out + "/sized", exist_ok=True)

def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# A billion laughs: 10 levels of 10 aliases each.
lines = ['#cloud-config', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for level in range(1, 10):
    lines.append("a%d: &a%d [%s]" % (level, level, ",".join(["*a%d" % (level - 1)] * 10)))
lines.append("hostname: *a9")
write("hostile/billion-laughs.yml", "\n".join(lines) + "\n")

# An alias fan-out of 1.3 GB: a 1.3 KB string, 1000 times per list, 1000 lists.
fanout = ["#cloud-config", "s: &s \"%s\"" % ("x" * 1300), "l: &l [%s]" % ",".join(["*s"] * 1000)]
fanout.append("write_files: [%s]" % ",".join(["{path: /x, content: *l}"] * 1000))
write("hostile/alias-fanout.yml", "\n".join(fanout) + "\n")

# 100k-deep flow nesting, and the same as block sequences.
write("hostile/deep-flow.yml", "#cloud-config\nhostname: " + "[" * 100000 + "]" * 100000 + "\n")
write("hostile/deep-block.yml", "#cloud-config\nx:\n" + "".join("  " * i + "- \n" for i in range(1, 2000)))

# Not UTF-8, and UTF-16 with a byte-order mark.
write("hostile/latin1.yml", b"#cloud-config\nhostname: caf\xe9\n")
write("hostile/utf16.yml", "\ufeff#cloud-config\nhostname: a\n".encode("utf-16-le"))
# A gzip bomb as user-data: 1 GiB of zeros after the header.
z = gzip.compress(b"#cloud-config\n# " + b"\0" * (1 << 30), compresslevel=9)
write("hostile/gzip-bomb.yml.gz", z)

def sized(target):
    parts = ["#cloud-config", "hostname: big", "write_files:"]
    size = 0
    index = 0
    while size < target:
        entry = (
            "  - path: /etc/generated/file-%d.conf\n"
            "    permissions: '0644'\n"
            "    owner: root:root\n"
            "    content: |\n"
            "      # generated entry %d\n"
            "      key_%d = value with some text to make it realistic %d\n" % (index, index, index, index)
        )
        parts.append(entry.rstrip("\n"))
        size += len(entry)
        index += 1
    parts.append("coreos:\n  units:")
    for unit in range(index // 10):
        parts.append("    - name: gen-%d.service\n      command: start\n      content: |\n        [Service]\n        ExecStart=/bin/true %d" % (unit, unit))
    return "\n".join(parts) + "\n"

write("sized/100k.yml", sized(100_000))
write("sized/1m.yml", sized(1_000_000))
write("sized/6m.yml", sized(6_000_000))
