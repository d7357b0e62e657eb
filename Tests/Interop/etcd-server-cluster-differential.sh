#!/usr/bin/env bash
# The server differential on three-member clusters: real etcd 3.4 against `coreos etcd`.
exec bash "$(dirname "$0")/etcd-server-differential.sh" --members 3
