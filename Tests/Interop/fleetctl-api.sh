#!/usr/bin/env bash
# fleetctl and fleet's HTTP API v1 on a `coreos etcd` member and two `coreos fleet`
# machines: every fleetctl command and flag with its exact output (fleet 1.0's formats),
# both drivers, FLEETCTL_* variables, `ssh` and `--tunnel` through a real sshd on
# loopback, and every API route with its error statuses.
set -uo pipefail
cd "$(dirname "$0")/../.."
. contrib/lib/common.sh
. Tests/Interop/lib/checks.sh
ensure_apt_packages curl openssh-server openssh-client
ours_binary="${COREOS_BINARY:-$(pwd)/.build/debug/coreos}"
images=/var/tmp/coreos-runtime-images
Tests/Interop/tools/runtime-images.sh "$images" || die "building the runtime's test images failed"
work="$(mktemp -d)"
declare -A pid=()
cleanup() {
    for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null; done
    wait 2>/dev/null || true
    pkill -f "fleetctl-api-test-unit" 2>/dev/null
    "$ours_binary" run --dir "$work/pods" gc --grace-period=0s >/dev/null 2>&1
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    rm -rf "$work"
}
trap cleanup EXIT
port=26900
m1=11111111aaaaaaaaaaaaaaaaaaaaaaaa
m2=22222222bbbbbbbbbbbbbbbbbbbbbbbb

"$ours_binary" etcd --name solo --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" --initial-cluster "solo=http://127.0.0.1:$((port + 1))" >"$work/etcd.log" 2>&1 &
pid[etcd]=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
start_fleet() { # NAME ID ROLE LISTEN...
    local name=$1 id=$2 role=$3
    shift 3
    "$ours_binary" fleet --machine-id "$id" --etcd_servers "http://127.0.0.1:$port" --metadata "role=$role" --public_ip 127.0.0.1 \
        --listen "$(
            IFS=,
            echo "$*"
        )" --agent_ttl 5s --engine_reconcile_interval 1 --log_directory "$work/logs" --runtime_directory "$work/run" >"$work/$name.log" 2>&1 &
    pid[$name]=$!
}
start_fleet m1 $m1 core "unix://$work/m1.sock" "http://127.0.0.1:$((port + 2))"
start_fleet m2 $m2 worker "unix://$work/m2.sock"
fleetctl() { "$ours_binary" fleetctl --endpoint "unix://$work/m1.sock" "$@"; }
for _ in $(seq 100); do [ "$(fleetctl list-machines --no-legend 2>/dev/null | wc -l)" = 2 ] && break; sleep 0.1; done
same() { # DESCRIPTION EXPECTED-TEXT COMMAND...: stdout must be exactly the text
    local description=$1 expected=$2
    shift 2
    check "$description" 0 "$@"
    if [ "$(cat out)" != "$expected" ]; then
        failed=$((failed + 1))
        echo "FAILED: $description: got"
        cat out
        echo "--- wanted"
        echo "$expected"
    else
        passed=$((passed + 1))
    fi
}
tab=$'\t'
mkdir -p "$work/units"
cd "$work/units" || die "no units directory"
unit_text() { printf '[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/bash -c "exec -a fleetctl-api-test-unit bash -c \\"while :; do echo tick; sleep 0.2; done\\""\n' "$1"; }
unit_text "Hello world" >hello.service
{ unit_text worker; printf '\n[X-Fleet]\nMachineMetadata=role=worker\n'; } >work.service
{ unit_text nowhere; printf '\n[X-Fleet]\nMachineMetadata=role=nowhere\n'; } >nowhere.service
{ unit_text global; printf '\n[X-Fleet]\nGlobal=true\n'; } >everywhere.service
{ unit_text "instance %i"; printf '\n[X-Fleet]\nConflicts=tmpl@*.service\n'; } >tmpl@.service

# Version, help and usage errors.
same "version" "fleetctl version 1.0.0" fleetctl version
same "--version" "fleetctl version 1.0.0" fleetctl --version
check "help lists the commands" 0 fleetctl help
check "... list-unit-files among them" 0 grep -q "list-unit-files" last.out
check "an unknown command fails" 1 fleetctl bogus
check "... naming it" 0 grep -q 'unknown command "bogus" for "fleetctl"' last.err
check "an unknown flag fails" 1 fleetctl list-units --bogus
check "a flag of another command fails" 1 fleetctl list-machines --replace

# Machines.
same "list-machines" "MACHINE${tab}${tab}IP${tab}${tab}METADATA
11111111...${tab}127.0.0.1${tab}role=core
22222222...${tab}127.0.0.1${tab}role=worker" fleetctl list-machines
same "list-machines -l --no-legend" "$m1${tab}127.0.0.1${tab}role=core
$m2${tab}127.0.0.1${tab}role=worker" fleetctl list-machines -l --no-legend
same "list-machines --full --fields ip,machine" "IP${tab}${tab}MACHINE
127.0.0.1${tab}$m1
127.0.0.1${tab}$m2" fleetctl list-machines --full --fields ip,machine
check "list-machines rejects an unknown field" 1 fleetctl list-machines --fields machine,bogus
check "... naming it" 0 grep -qx 'Invalid key in output format: "bogus"' last.err
check "list-machines rejects empty fields" 1 fleetctl list-machines --fields ""
check "... saying so" 0 grep -qx 'Must define output format' last.err

# Submit, load, start, list.
same "submit prints nothing" "" fleetctl submit hello.service
hash=$(fleetctl cat hello.service | sha1sum | cut -c1-40)
same "list-unit-files of a submitted unit" "UNIT${tab}${tab}HASH${tab}DSTATE${tab}${tab}STATE${tab}${tab}TARGET
hello.service${tab}${hash:0:7}${tab}inactive${tab}inactive${tab}-" fleetctl list-unit-files
same "cat prints the unit as stored" "$(cat hello.service)" fleetctl cat hello
same "load" "Unit hello.service loaded on 11111111.../127.0.0.1" fleetctl load hello.service
same "start" "Unit hello.service launched on 11111111.../127.0.0.1" fleetctl start hello
same "start of a launched unit prints nothing" "" fleetctl start hello.service
same "list-units" "UNIT${tab}${tab}MACHINE${tab}${tab}${tab}ACTIVE${tab}SUB
hello.service${tab}11111111.../127.0.0.1${tab}active${tab}running" fleetctl list-units
same "list-units -l --no-legend" "hello.service${tab}$m1/127.0.0.1${tab}active${tab}running" fleetctl list-units -l --no-legend
same "list-units --fields unit,load,hash --full" "UNIT${tab}${tab}LOAD${tab}HASH
hello.service${tab}loaded${tab}$hash" fleetctl list-units --fields unit,load,hash --full
same "list-unit-files --fields unit,desc,global,dstate,state --no-legend" "hello.service${tab}Hello world${tab}false${tab}launched${tab}launched" \
    fleetctl list-unit-files --fields unit,desc,global,dstate,state --no-legend
check "list-unit-files --fields tmachine warns it is deprecated" 0 fleetctl list-unit-files --fields unit,tmachine
check "... on stderr" 0 grep -q 'The "tmachine" field is deprecated' last.err
same "metadata places a unit" "Unit work.service launched on 22222222.../127.0.0.1" fleetctl start work.service
same "--driver=etcd sees the same units" "$(fleetctl list-units)" "$ours_binary" fleetctl --driver etcd --endpoint "http://127.0.0.1:$port" list-units
same "FLEETCTL_ENDPOINT chooses the endpoint" "$(fleetctl list-units)" env FLEETCTL_ENDPOINT="unix://$work/m2.sock" "$ours_binary" fleetctl list-units
same "a TCP endpoint answers too" "$(fleetctl list-units)" "$ours_binary" fleetctl --endpoint "http://127.0.0.1:$((port + 2))" list-units

# Status and journal, answered by the machine running the unit.
check "status of a unit on another machine" 0 fleetctl status work.service
check "... shows it running" 0 grep -q "Active: active (running)" last.out
check "... with its output" 0 grep -q "bash\[[0-9]*\]: tick" last.out
same "journal --lines 3 prints three lines" "3" bash -c "'$ours_binary' fleetctl --endpoint unix://$work/m1.sock journal --lines 3 work.service | wc -l"
check "journal -f follows new output" 0 bash -c "timeout 2 '$ours_binary' fleetctl --endpoint unix://$work/m1.sock journal -f --lines 1 work.service > follow.out; [ \$(grep -c tick follow.out) -ge 4 ]"
check "status of an unknown unit fails" 1 fleetctl status missing.service
check "... saying so" 0 grep -qx "Unit missing.service does not exist." last.err

# Blocking: --no-block, --block-attempts.
same "--no-block returns at once" "" fleetctl start --no-block nowhere.service
cp nowhere.service nowhere2.service
check "--block-attempts gives up on a unit that cannot be scheduled" 1 fleetctl start --block-attempts 2 nowhere2.service
check "... saying why" 0 grep -q "timed out waiting for unit nowhere2.service to report state launched" last.err
same "start of a unit already wanted launched does not wait (fleet skips it)" "" fleetctl start --block-attempts 1 nowhere.service
same "destroy" "Destroyed nowhere.service
Destroyed nowhere2.service" fleetctl destroy nowhere.service nowhere2
same "destroy of a missing unit says nothing" "" fleetctl destroy nowhere.service

# Global units and templates.
same "start of a global unit is only triggered" "Triggered global unit everywhere.service start" fleetctl start everywhere.service
for _ in $(seq 50); do [ "$(fleetctl list-units --no-legend | grep -c '^everywhere.service.*running')" = 2 ] && break; sleep 0.2; done
check "the global unit runs on both machines" 0 test "$(fleetctl list-units --no-legend | grep -c '^everywhere.service.*running')" = 2
same "list-unit-files shows a global unit's target and state" "everywhere.service - global" bash -c "'$ours_binary' fleetctl --endpoint unix://$work/m1.sock list-unit-files --no-legend --fields unit,state,target | awk '/^everywhere/ { print \$1, \$2, \$3 }'"
check "instances of a template start from the template file" 0 fleetctl start tmpl@1.service tmpl@2.service
check "... on two machines (they conflict)" 0 test "$(fleetctl list-units --no-legend --fields unit,machine | grep '^tmpl@' | cut -f2- | sort -u | wc -l)" = 2
check "a third conflicting instance waits" 1 fleetctl start --block-attempts 3 tmpl@3.service

# Stop, unload, restart, replace.
same "stop" "Unit hello.service loaded on 11111111.../127.0.0.1" fleetctl stop hello.service
same "unload" "Unit hello.service inactive" fleetctl unload hello.service
same "restart is a rolling stop and start" "Unit work.service loaded on 22222222.../127.0.0.1
Unit work.service launched on 22222222.../127.0.0.1" fleetctl restart work.service
unit_text "Hello again" >hello.service
check "a changed local file is not taken without --replace" 0 fleetctl submit hello.service
check "... with a warning" 0 grep -q "WARNING: Unit hello.service in registry differs from local unit file" last.err
check "--replace takes it" 0 fleetctl submit --replace hello.service
same "... as cat shows" "$(cat hello.service)" fleetctl cat hello.service

# A unit whose ExecStart is `coreos run …`: a pod under the embedded supervisor.
printf '[Service]\nExecStart=%s run --dir %s --insecure-options=image run --net=host %s --exec /bin/sh -- -c "while :; do echo from the pod; sleep 0.3; done"\n' \
    "$ours_binary" "$work/pods" "$images/busybox.aci" >pod.service
same "a coreos run unit launches" "Unit pod.service launched on 11111111.../127.0.0.1" fleetctl start pod.service
for _ in $(seq 100); do fleetctl journal --lines 1 pod.service 2>/dev/null | grep -q "from the pod" && break; sleep 0.1; done
check "... and its pod prints" 0 fleetctl journal --lines 1 pod.service
check "... into the unit's output" 0 grep -q ": from the pod$" last.out
check "... with a running pod" 0 bash -c "'$ours_binary' run --dir '$work/pods' list --no-legend | grep -q running"
same "stop stops the pod" "Unit pod.service loaded on 11111111.../127.0.0.1" fleetctl stop pod.service
check "... which is no longer running" 1 bash -c "'$ours_binary' run --dir '$work/pods' list --no-legend | grep -q running"

# ssh and --tunnel through a real sshd on loopback, keys in an agent of the test's own.
mkdir -p /run/sshd "$work/ssh"
ssh-keygen -q -t ed25519 -N "" -f "$work/ssh/host" && ssh-keygen -q -t ed25519 -N "" -f "$work/ssh/user"
cp "$work/ssh/user.pub" "$work/ssh/authorized_keys"
/usr/sbin/sshd -D -e -p $((port + 3)) -h "$work/ssh/host" -o ListenAddress=127.0.0.1 -o AuthorizedKeysFile="$work/ssh/authorized_keys" \
    -o PermitRootLogin=prohibit-password -o StrictModes=no -o PidFile=none >"$work/sshd.log" 2>&1 &
pid[sshd]=$!
eval "$(ssh-agent -a "$work/ssh/agent.sock" -s)" >/dev/null
pid[agent]=$SSH_AGENT_PID
ssh-add -q "$work/ssh/user"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$((port + 3))) 2>/dev/null && break; sleep 0.1; done
ssh_flags=(--ssh-username "$(id -un)" --strict-host-key-checking=false)
same "ssh to a machine runs the command there" "hello from $(hostname)" fleetctl "${ssh_flags[@]}" ssh --ssh-port $((port + 3)) 11111111 echo hello from '$(hostname)'
same "ssh to the machine of a unit" "ok" fleetctl "${ssh_flags[@]}" ssh --ssh-port $((port + 3)) --unit work.service echo ok
check "ssh to an unknown machine fails" 1 fleetctl "${ssh_flags[@]}" ssh 99999999 true
same "--tunnel reaches the API socket through ssh" "$(fleetctl list-machines)" \
    fleetctl "${ssh_flags[@]}" --tunnel "127.0.0.1:$((port + 3))" list-machines

# The HTTP API itself.
api() { # METHOD PATH [CURL ARGS...]: prints the status, then the body
    local method=$1 path=$2
    shift 2
    curl -s --unix-socket "$work/m1.sock" -X "$method" -w '\n%{http_code}' "$@" "http://fleet$path"
}
status_of() { api "$@" | tail -1; }
json='Content-Type: application/json'
check "GET /fleet/v1/units" 0 test "$(status_of GET /fleet/v1/units)" = 200
check "... lists the units with their states" 0 bash -c "curl -s --unix-socket '$work/m1.sock' http://fleet/fleet/v1/units | python3 -c 'import json,sys; u={x[\"name\"]:x for x in json.load(sys.stdin)[\"units\"]}; assert u[\"work.service\"][\"currentState\"]==\"launched\" and u[\"work.service\"][\"machineID\"]==\"$m2\", u'"
check "GET a unit" 0 test "$(status_of GET /fleet/v1/units/work.service)" = 200
same "GET a missing unit: 404 with fleet's error body" '{"error":{"code":404,"message":"unit does not exist"}}
404' api GET /fleet/v1/units/missing.service
options='{"desiredState":"inactive","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}'
same "PUT creates: 201" "
201" api PUT /fleet/v1/units/api.service -H "$json" -d "$options"
same "PUT a desired state: 204" "
204" api PUT /fleet/v1/units/api.service -H "$json" -d '{"desiredState":"loaded"}'
check "PUT without a JSON content type: 415" 0 test "$(status_of PUT /fleet/v1/units/api.service -H 'Content-Type: text/plain' -d '{}')" = 415
check "PUT of broken JSON: 400" 0 test "$(status_of PUT /fleet/v1/units/api.service -H "$json" -d '{')" = 400
check "PUT with a different name in the body: 400" 0 test "$(status_of PUT /fleet/v1/units/api.service -H "$json" -d '{"name":"other.service"}')" = 400
check "PUT of an invalid unit name: 400" 0 test "$(status_of PUT /fleet/v1/units/bad%20name -H "$json" -d "$options")" = 400
check "PUT of an unknown desired state: 400" 0 test "$(status_of PUT /fleet/v1/units/api.service -H "$json" -d '{"desiredState":"running"}')" = 400
check "PUT of a new unit without options: 409" 0 test "$(status_of PUT /fleet/v1/units/new.service -H "$json" -d '{"desiredState":"launched"}')" = 409
check "PUT of an existing unit without a desired state: 409" 0 test "$(status_of PUT /fleet/v1/units/api.service -H "$json" -d '{}')" = 409
check "PUT of a unit with bad [X-Fleet]: 400" 0 test "$(status_of PUT /fleet/v1/units/x.service -H "$json" -d '{"options":[{"section":"X-Fleet","name":"Bogus","value":"1"}]}')" = 400
same "DELETE: 204" "
204" api DELETE /fleet/v1/units/api.service
same "DELETE of a missing unit: 404" '{"error":{"code":404,"message":"unit does not exist"}}
404' api DELETE /fleet/v1/units/api.service
check "POST on the units collection: 405" 0 test "$(status_of POST /fleet/v1/units)" = 405
check "GET /fleet/v1/state" 0 test "$(status_of GET /fleet/v1/state)" = 200
check "... filtered by machineID" 0 bash -c "curl -s --unix-socket '$work/m1.sock' 'http://fleet/fleet/v1/state?machineID=$m2' | python3 -c 'import json,sys; s=json.load(sys.stdin)[\"states\"]; assert s and all(x[\"machineID\"]==\"$m2\" for x in s), s'"
check "... filtered by unitName" 0 bash -c "curl -s --unix-socket '$work/m1.sock' 'http://fleet/fleet/v1/state?unitName=work.service' | python3 -c 'import json,sys; s=json.load(sys.stdin)[\"states\"]; assert len(s)==1 and s[0][\"systemdSubState\"]==\"running\", s'"
check "GET /fleet/v1/machines" 0 test "$(status_of GET /fleet/v1/machines)" = 200
same "PATCH machine metadata: 204" "
204" api PATCH /fleet/v1/machines -H "$json" -d "[{\"op\":\"add\",\"path\":\"/$m1/metadata/zone\",\"value\":\"a\"},{\"op\":\"remove\",\"path\":\"/$m1/metadata/role\"}]"
for _ in $(seq 50); do fleetctl list-machines --no-legend | grep -q "zone=a" && break; sleep 0.1; done
same "... reaches the machine's record" "11111111...${tab}127.0.0.1${tab}zone=a" bash -c "'$ours_binary' fleetctl --endpoint unix://$work/m1.sock list-machines --no-legend | head -1"
check "PATCH with an unknown op: 400" 0 test "$(status_of PATCH /fleet/v1/machines -H "$json" -d "[{\"op\":\"move\",\"path\":\"/$m1/metadata/x\"}]")" = 400
check "PATCH of a path outside metadata: 400" 0 test "$(status_of PATCH /fleet/v1/machines -H "$json" -d "[{\"op\":\"add\",\"path\":\"/$m1/id\",\"value\":\"x\"}]")" = 400
check "GET /fleet/v1/discovery is a discovery document" 0 bash -c "curl -s --unix-socket '$work/m1.sock' http://fleet/fleet/v1/discovery | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"kind\"]==\"discovery#restDescription\" and \"Units\" in d[\"resources\"]'"
check "GET /metrics" 0 bash -c "curl -s --unix-socket '$work/m1.sock' http://fleet/metrics | grep -q '^fleet_agent_units '"
check "an unknown path: 404" 0 test "$(status_of GET /fleet/v1/bogus)" = 404
check "the root: 405" 0 test "$(status_of GET /)" = 405
check "a page token with another limit: 400" 0 test "$(status_of GET '/fleet/v1/units?nextPageToken=AQABAA==')" = 400
# Paging: 150 units come in pages of 100 with a token between them.
for n in $(seq 150); do printf '{"desiredState":"inactive","options":[{"section":"Service","name":"ExecStart","value":"/bin/true %s"}]}' "$n" >body.json
    curl -s --unix-socket "$work/m1.sock" -X PUT -H "$json" --data @body.json "http://fleet/fleet/v1/units/page$n.service" >/dev/null; done
check "the first page holds 100 units and a token" 0 bash -c "curl -s --unix-socket '$work/m1.sock' http://fleet/fleet/v1/units | python3 -c 'import json,sys; p=json.load(sys.stdin); assert len(p[\"units\"])==100 and p[\"nextPageToken\"]==\"ZAACAA==\", (len(p[\"units\"]), p.get(\"nextPageToken\"))'"
check "the second page holds the rest" 0 bash -c "curl -s --unix-socket '$work/m1.sock' 'http://fleet/fleet/v1/units?nextPageToken=ZAACAA==' | python3 -c 'import json,sys; p=json.load(sys.stdin); assert 50 < len(p[\"units\"]) < 100 and \"nextPageToken\" not in p, len(p[\"units\"])'"
check "fleetctl follows the pages" 0 test "$(fleetctl list-unit-files --no-legend | grep -c '^page')" = 150

echo "fleetctl and API: $passed passed, $failed failed"
[ "$failed" = 0 ]
