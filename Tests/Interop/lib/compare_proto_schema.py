"""Compares our etcd v3 schema (contrib/proto/etcd.desc) with the one compiled into Debian's
etcd 3.4 binary: every message, field (name, number, type, label, oneof) and enum value of
etcdserverpb, mvccpb and authpb must match, and every service method must have the same
request and response types and streaming flags.

Go binaries register their .proto files as gzipped FileDescriptorProto blobs; this script
finds them by scanning the executable for gzip streams. Run with Debian's /usr/bin/python3
(python3-protobuf)."""
import sys
import zlib

from google.protobuf import descriptor_pb2


def embedded_descriptors(binary_path):
    data = open(binary_path, "rb").read()
    found = {}
    start = 0
    while True:
        index = data.find(b"\x1f\x8b\x08", start)
        if index < 0:
            break
        start = index + 1
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[index:index + 1 << 20])
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:
            continue
        if proto.package in ("etcdserverpb", "mvccpb", "authpb", "v3lockpb", "v3electionpb") and proto.message_type:
            found.setdefault(proto.package, []).append(proto)
    return found


def index(files):
    messages, enums, services = {}, {}, {}

    def walk(prefix, message):
        name = prefix + "." + message.name
        fields = {}
        for field in message.field:
            oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
            fields[field.name] = (field.number, field.type, field.label, field.type_name.split(".")[-1], oneof)
        messages[name] = fields
        for nested in message.nested_type:
            walk(name, nested)
        for enum in message.enum_type:
            enums[name + "." + enum.name] = {value.name: value.number for value in enum.value}

    for proto in files:
        for message in proto.message_type:
            walk(proto.package, message)
        for enum in proto.enum_type:
            enums[proto.package + "." + enum.name] = {value.name: value.number for value in enum.value}
        for service in proto.service:
            services[proto.package + "." + service.name] = {
                method.name: (method.input_type.split(".")[-1], method.output_type.split(".")[-1],
                              method.client_streaming, method.server_streaming)
                for method in service.method
            }
    return messages, enums, services


def main(ours_path, etcd_binary):
    ours = descriptor_pb2.FileDescriptorSet.FromString(open(ours_path, "rb").read()).file
    theirs = [proto for protos in embedded_descriptors(etcd_binary).values() for proto in protos]
    if not theirs:
        print("no etcd descriptors found in", etcd_binary)
        return 1
    our_messages, our_enums, our_services = index(ours)
    their_messages, their_enums, their_services = index(theirs)
    problems = []
    # etcd's binary also registers internal messages (raft, lease, v2 store); compare the API ones.
    for name, fields in our_messages.items():
        if name not in their_messages:
            problems.append("message %s not in etcd" % name)
        elif fields != their_messages[name]:
            problems.append("message %s differs:\n  ours   %s\n  theirs %s" % (name, fields, their_messages[name]))
    for name, values in our_enums.items():
        if their_enums.get(name) != values:
            problems.append("enum %s differs: ours %s theirs %s" % (name, values, their_enums.get(name)))
    for name, methods in their_services.items():
        if name.split(".")[0] not in ("etcdserverpb", "v3lockpb", "v3electionpb"):
            continue
        if our_services.get(name) != methods:
            problems.append("service %s differs:\n  ours   %s\n  theirs %s" % (name, our_services.get(name), methods))
    api_messages = [name for name in their_messages if any(
        name == "etcdserverpb." + m.split(".")[-1] for m in our_messages)]
    for problem in problems:
        print("MISMATCH:", problem)
    print("compared %d messages, %d enums, %d services with etcd's embedded descriptors: %d mismatches"
          % (len(our_messages), len(our_enums), len(our_services), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
