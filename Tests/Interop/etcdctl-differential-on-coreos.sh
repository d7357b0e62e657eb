#!/usr/bin/env bash
# The etcdctl differential (our etcdctl against Debian's, same commands, same output) with
# both twins running `coreos etcd` instead of etcd 3.4: our server answers what etcdctl
# asks as etcd does. Auth, membership changes and bbolt snapshot files are skipped (see
# Tests/Interop/lib/differential.sh).
DIFFERENTIAL_SERVER=coreos exec bash "$(dirname "$0")/etcdctl-differential.sh"
