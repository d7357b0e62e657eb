#!/usr/bin/env bash
# Our etcd v3 .proto files describe exactly the wire schema of Debian's etcd 3.4 binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
ensure_apt_packages etcd-server python3-protobuf
/usr/bin/python3 Tests/Interop/lib/compare_proto_schema.py contrib/proto/etcd.desc /usr/bin/etcd
