#!/bin/bash
# SPDX-License-Identifier: MIT
#
# jwctl fanning out over 20 hosts: 20 jobworkerd on loopback ports, each with
# its own state directory and a server certificate of its own name
# (hostNN.test, checked through the per-host tls-name of jwctl's config).
# host05 is down, host07 presents a certificate for another name, host13's
# policy lets alice only look (no start). Every host's job prints the name
# of its daemon's state directory, so each output line can be checked
# byte for byte and against the host it is attributed to.
#
# Usage: test-jwctl-fanout.sh [JWCTL [JOBWORKERD]]
# Exits 77 (skip) when a binary or a tool (certtool, python3, timeout) is missing.

set -u
set -o pipefail

BUILD=${JW_BUILD_ROOT:-$(pwd)}
SRC=${JW_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
JWCTL=${1:-$BUILD/jwctl}
DAEMON=${2:-$BUILD/jobworkerd}
CERTS=$SRC/certs
N=20
DOWN=05 WRONGNAME=07 NOPERM=13

skip() { echo "SKIP: $*"; exit 77; }
[[ -x $DAEMON ]] || skip "jobworkerd was not built ($DAEMON)"
[[ -x $JWCTL ]] || skip "jwctl was not built ($JWCTL)"
for tool in python3 timeout certtool; do
        command -v $tool >/dev/null || skip "$tool is not installed"
done
[[ -r $CERTS/ca-key.pem ]] || skip "development CA key missing in $CERTS"

TMP=$(mktemp -d /tmp/test-jwctl-fanout.XXXXXX)
chmod 755 "$TMP"
declare -A PIDS=()
stop_daemons() {
        local i pid
        for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null; done
        for i in "${!PIDS[@]}"; do
                pid=${PIDS[$i]}
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        done
        PIDS=()
}
cleanup() {
        local bg
        stop_daemons
        for bg in $(jobs -p); do kill -KILL "$bg" 2>/dev/null; done
        [[ -n ${KEEP_TMP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

FAILS=0
PASSES=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { PASSES=$((PASSES + 1)); }
check() { # NAME WANT GOT
        if [[ $2 == "$3" ]]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}

# --- certificates: one server certificate per host -----------------------------
cert() { # NAME DNS
        certtool --generate-privkey --key-type ecdsa --curve secp384r1 --no-text --outfile "$TMP/$1-key.pem" 2>/dev/null
        printf 'cn = "%s"\nserial = %s\nexpiration_days = 2\nsigning_key\ntls_www_server\ndns_name = "%s"\n' \
                "$2" "$(date +%s%N | cut -c1-15)" "$2" >"$TMP/$1.tmpl"
        certtool --generate-certificate --hash SHA384 --no-text --load-privkey "$TMP/$1-key.pem" \
                --load-ca-certificate "$CERTS/ca.pem" --load-ca-privkey "$CERTS/ca-key.pem" \
                --template "$TMP/$1.tmpl" --outfile "$TMP/$1.pem" 2>/dev/null
}

HOSTS=()
for i in $(seq -w 1 $N); do HOSTS+=("host$i"); done
for i in $(seq -w 1 $N); do
        [[ $i == "$DOWN" ]] && continue
        if [[ $i == "$WRONGNAME" ]]; then cert "host$i" elsewhere.test; else cert "host$i" "host$i.test"; fi \
                || { echo "certtool failed"; exit 1; }
done

# --- the daemons ----------------------------------------------------------------
printf 'alice self task-manager\n' >"$TMP/policy.conf"
printf 'alice self analyst\n' >"$TMP/policy-noperm.conf"
declare -A PORTS=()
for i in $(seq -w 1 $N); do
        [[ $i == "$DOWN" ]] && continue
        policy=$TMP/policy.conf
        [[ $i == "$NOPERM" ]] && policy=$TMP/policy-noperm.conf
        mkdir -m 700 "$TMP/s$i"
        "$DAEMON" --listen 127.0.0.1:0 --cert "$TMP/host$i.pem" --key "$TMP/host$i-key.pem" --ca "$CERTS/ca.pem" \
                --policy "$policy" --state-dir "$TMP/s$i" --stop-grace 5s >"$TMP/d$i.log" 2>&1 &
        PIDS[$i]=$!
done
for i in "${!PIDS[@]}"; do
        for _ in $(seq 300); do
                PORTS[$i]=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/d$i.log" | head -n1)
                [[ -n ${PORTS[$i]} ]] && grep -q ready "$TMP/d$i.log" && break
                PORTS[$i]=
                kill -0 "${PIDS[$i]}" 2>/dev/null || break
                sleep 0.1
        done
        [[ -n ${PORTS[$i]} ]] || { echo "jobworkerd $i did not start:"; cat "$TMP/d$i.log"; exit 1; }
done
# The down host: a port nothing listens on (bound, then closed).
PORTS[$DOWN]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

mkdir -p "$TMP/config/jwctl" "$TMP/statehome"
{
        echo "ca = $CERTS/ca.pem"
        echo "cert = $CERTS/alice.pem"
        echo "key = $CERTS/alice-key.pem"
        echo "timeout = 5"
        echo "reconnect-timeout = 0"
        for i in $(seq -w 1 $N); do
                echo "host host$i = 127.0.0.1:${PORTS[$i]}"
                echo "host host$i tls-name = host$i.test"
        done
        echo "group all = host[01-$N]"
        echo "group few = host01 host02 host03"
} >"$TMP/config/jwctl/config"
export XDG_CONFIG_HOME=$TMP/config XDG_STATE_HOME=$TMP/statehome NO_COLOR=1
unset JWCTL_SERVER JWCTL_CERT JWCTL_KEY JWCTL_CA

# What the job prints: its daemon's state directory name (sNN), on both
# streams, and a last line without newline.
JOB='d=$(tr "\0" "\n" </proc/$PPID/cmdline | sed -n "/^--state-dir$/{n;p}"); d=${d##*/}; echo "out $d"; echo "err $d" >&2; printf "tail-$d"'
GOOD=()
for i in $(seq -w 1 $N); do
        [[ $i == "$DOWN" || $i == "$WRONGNAME" || $i == "$NOPERM" ]] || GOOD+=("$i")
done

# --- tests ----------------------------------------------------------------------
test_run_prefixed() {
        local out=$TMP/run.out err=$TMP/run.err rc want
        timeout 60 "$JWCTL" run --hosts @all -- sh -c "$JOB" >"$out" 2>"$err"
        rc=$?
        check "run exit code (a host down)" 3 "$rc"
        want=$(for i in "${GOOD[@]}"; do printf 'host%s: out s%s\nhost%s: tail-s%s\n' "$i" "$i" "$i" "$i"; done | sort)
        check "run stdout, every line attributed" "$want" "$(sort "$out")"
        want=$(for i in "${GOOD[@]}"; do printf 'host%s: err s%s\n' "$i" "$i"; done | sort)
        check "run stderr lines" "$want" "$(grep ': err ' "$err" | sort)"
        # Per host, its lines in order.
        check "host01 order" "$(printf 'host01: out s01\nhost01: tail-s01')" "$(grep '^host01:' "$out")"
        # The summary: one line per host, in the order named.
        check "summary header" "HOST    STATE        CODE          TIME  ERROR" "$(grep '^HOST ' "$err")"
        check "summary hosts" "$(printf '%s\n' "${HOSTS[@]}")" "$(sed -n '/^HOST /,$p' "$err" | tail -n +2 | awk '{print $1}')"
        for i in "${GOOD[@]}"; do
                check "host$i ok" "ok 0" "$(awk -v h="host$i" '$1 == h {print $2, $3}' "$err")"
        done
        grep -q "^host$DOWN  *unreachable  *-  .*cannot connect to 127.0.0.1:${PORTS[$DOWN]}: connection refused" "$err" \
                && pass || fail "host$DOWN not reported unreachable: $(cat "$err")"
        grep -q "^host$WRONGNAME  *unreachable .*TLS handshake with 127.0.0.1:${PORTS[$WRONGNAME]} failed: .*" "$err" \
                && pass || fail "host$WRONGNAME (certificate for another name) not refused: $(grep "^host$WRONGNAME" "$err")"
        grep -q "^host$NOPERM  *failed .*permission denied for user alice to start jobs" "$err" \
                && pass || fail "host$NOPERM not refused for permission: $(grep "^host$NOPERM" "$err")"
}

test_exit_codes() {
        local rc
        timeout 30 "$JWCTL" run --hosts @few -- true >/dev/null 2>&1
        check "all exit 0" 0 $?
        timeout 30 "$JWCTL" run --hosts @few -- sh -c 'exit 3' >/dev/null 2>"$TMP/e3"
        rc=$?
        check "a job's own 3 is not unreachable" 1 "$rc"
        check "exited 3 in the summary" "exited 3" "$(awk '$1 == "host02" {print $2, $3}' "$TMP/e3")"
        timeout 30 "$JWCTL" run --hosts "host$NOPERM,host01" -- true >/dev/null 2>&1
        check "a refusal is 1" 1 $?
        timeout 30 "$JWCTL" run --hosts "host01,host$WRONGNAME" -- true >/dev/null 2>&1
        check "a refused certificate is 3" 3 $?
}

test_bytes_exact() {
        local rc
        # One host, no prefix: the bytes as the job wrote them.
        timeout 30 "$JWCTL" run --no-prefix --hosts host02 -- sh -c "$JOB" >"$TMP/raw.out" 2>"$TMP/raw.err"
        check "raw exit" 0 $?
        [[ $(cat "$TMP/raw.out") == "$(printf 'out s02\ntail-s02')" && $(tail -c 1 "$TMP/raw.out") == 2 ]] \
                && pass || fail "raw stdout not byte-exact: $(od -c "$TMP/raw.out" | head)"
        # JSON over every host: rebuild each host's streams and compare.
        timeout 60 "$JWCTL" run --json --hosts @all -- sh -c "$JOB; printf '\377\000'" >"$TMP/json.out" 2>"$TMP/json.err"
        rc=$?
        check "json exit" 3 "$rc"
        python3 - "$TMP/json.out" "${GOOD[@]}" <<'PY' && pass || fail "json output: $(head -c 2000 "$TMP/json.out")"
import base64, json, sys
path, good = sys.argv[1], sys.argv[2:]
streams, summary = {}, {}
for line in open(path, encoding="utf-8"):
    o = json.loads(line)
    if "stream" in o:
        d = o["data"].encode() if "data" in o else base64.b64decode(o["data_base64"])
        streams.setdefault((o["host"], o["stream"]), b"")
        streams[(o["host"], o["stream"])] += d
    else:
        summary[o["host"]] = o
for i in good:
    h = "host" + i
    assert streams[(h, "stdout")] == b"out s%s\ntail-s%s\xff\x00" % (i.encode(), i.encode()), (h, streams[(h, "stdout")])
    assert streams[(h, "stderr")] == b"err s%s\n" % i.encode(), h
    assert summary[h]["state"] == "ok" and summary[h]["exit_code"] == 0 and len(summary[h]["job_id"]) == 36, summary[h]
assert summary["host05"]["state"] == "unreachable" and "connection refused" in summary["host05"]["error"]
assert summary["host07"]["state"] == "unreachable"
assert summary["host13"]["state"] == "failed" and "permission denied" in summary["host13"]["error"]
assert len(summary) == 20 and not any(h[0] in ("host05", "host07", "host13") for h in streams)
PY
}

test_saved_run() {
        local rc ids
        timeout 60 "$JWCTL" start --save r1 --hosts @all -- sh -c 'sleep 1000' >"$TMP/start.out" 2>"$TMP/start.err"
        rc=$?
        check "start exit" 3 "$rc"
        ids=$(awk '{print $1}' "$TMP/start.out" | sort)
        check "start prints HOST ID" "$(for i in "${GOOD[@]}"; do echo "host$i"; done)" "$ids"
        check "saved run" "$(sort "$TMP/start.out")" "$(sort "$TMP/statehome/jwctl/runs/r1")"
        timeout 60 "$JWCTL" status --json @r1 >"$TMP/status.out" 2>/dev/null
        check "status @run" 0 $?
        check "status: all running" "${#GOOD[@]}" "$(grep -c '"state\\":\\"running' "$TMP/status.out")"
        # HOST:ID acts on that host only.
        local first=$(head -n1 "$TMP/start.out")
        timeout 30 "$JWCTL" stop "${first% *}:${first#* }" >/dev/null 2>&1
        check "stop HOST:ID" 0 $?
        timeout 60 "$JWCTL" stop @r1 >/dev/null 2>"$TMP/stop.err"
        check "stop @run (one stopped already)" 1 $?
        check "stop @run: the others stopped" "$((${#GOOD[@]} - 1))" "$(grep -c ' ok ' "$TMP/stop.err")"
        timeout 60 "$JWCTL" wait @r1 >/dev/null 2>"$TMP/wait.err"
        check "wait @run: killed jobs" 1 $?
        check "wait @run: every job killed" "${#GOOD[@]}" "$(grep -c ' killed  *SIGTERM' "$TMP/wait.err")"
        timeout 30 "$JWCTL" logs @nope >/dev/null 2>"$TMP/nope.err"
        check "unknown run" 2 $?
        grep -q "no saved run @nope" "$TMP/nope.err" && pass || fail "unknown run message: $(cat "$TMP/nope.err")"
}

test_ctrl_c() {
        local pid rc
        # --foreground: timeout(1) passes our SIGINT to jwctl alone; without
        # it, it sends it to its process group as well, and jwctl gets two
        # (a second Ctrl-C cancels the streams before the jobs' last words).
        timeout --foreground -k 10 120 "$JWCTL" run --save cc --hosts @all -- \
                sh -c 'trap "echo stopped; exit 7" TERM; echo started; while :; do sleep 0.1; done' \
                >"$TMP/cc.out" 2>"$TMP/cc.err" &
        pid=$!
        for _ in $(seq 300); do
                [[ $(grep -c ': started$' "$TMP/cc.out") -ge ${#GOOD[@]} ]] && break
                sleep 0.1
        done
        check "every host started" "${#GOOD[@]}" "$(grep -c ': started$' "$TMP/cc.out")"
        kill -INT "$pid"
        rc=124
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        wait "$pid"
        rc=$?
        check "Ctrl-C exit code" 130 "$rc"
        check "every host's job got SIGTERM" \
                "$(for i in "${GOOD[@]}"; do echo "host$i: stopped"; done)" "$(grep ': stopped$' "$TMP/cc.out" | sort)"
        timeout 60 "$JWCTL" status --json @cc >"$TMP/cc-status.out" 2>/dev/null
        check "no job left running" 0 "$(grep -c '"state\\":\\"running' "$TMP/cc-status.out")"
}

test_group_and_failfast() {
        timeout 60 "$JWCTL" run --group-output --hosts @few,host$NOPERM -- sh -c 'echo same' >"$TMP/g.out" 2>"$TMP/g.err"
        check "group exit" 1 $?
        check "folded output" "$(printf '==> host01, host02, host03 <==\nsame')" "$(cat "$TMP/g.out")"
        timeout 60 "$JWCTL" run --fail-fast --parallel 1 --hosts host$NOPERM,@few -- true >/dev/null 2>"$TMP/ff.err"
        check "fail-fast exit" 1 $?
        check "fail-fast skips the rest" "skipped skipped skipped" \
                "$(awk '$1 ~ /^host0[123]$/ {printf "%s%s", s, $2; s=" "}' "$TMP/ff.err")"
}

test_logs_and_parallel() {
        local want
        # --parallel 2: 20 hosts two at a time, still every one's output.
        timeout 120 "$JWCTL" run --parallel 2 --save lp --hosts @all -- sh -c "$JOB" >"$TMP/lp.out" 2>"$TMP/lp.err"
        check "parallel 2 exit" 3 $?
        want=$(for i in "${GOOD[@]}"; do printf 'host%s: out s%s\nhost%s: tail-s%s\n' "$i" "$i" "$i" "$i"; done | sort)
        check "parallel 2 stdout" "$want" "$(sort "$TMP/lp.out")"
        # logs @run: each finished job's output again, from its own host.
        timeout 60 "$JWCTL" logs @lp >"$TMP/logs.out" 2>"$TMP/logs.err"
        check "logs @run exit" 0 $?
        check "logs @run stdout" "$want" "$(sort "$TMP/logs.out")"
        check "logs @run stderr" "$(for i in "${GOOD[@]}"; do printf 'host%s: err s%s\n' "$i" "$i"; done | sort)" \
                "$(grep ': err ' "$TMP/logs.err" | sort)"
        timeout 60 "$JWCTL" logs --stdout --offset 4 --no-prefix "host02:$(awk '$1 == "host02" {print $2}' "$TMP/statehome/jwctl/runs/lp")" \
                >"$TMP/logs2.out" 2>/dev/null
        check "logs HOST:ID --offset" "s02 tail-s02" "$(tr '\n' ' ' <"$TMP/logs2.out")"
}

test_usage() {
        timeout 10 "$JWCTL" list --hosts host01,web9,@nogroup >/dev/null 2>"$TMP/u.err"
        check "unknown names: usage error" 2 $?
        check "unknown names named" "jwctl: unknown hosts or groups: web9, @nogroup (name hosts with 'host NAME = ADDR' and groups with 'group NAME = ...' in the config file, or give HOST:PORT)" \
                "$(cat "$TMP/u.err")"
        timeout 10 "$JWCTL" list --hosts 'host[01-99999]' >/dev/null 2>"$TMP/u.err"
        check "range bound" 2 $?
        timeout 10 "$JWCTL" run -t --hosts host01,host02 -- true >/dev/null 2>"$TMP/u.err"
        check "run -t across hosts: usage error" 2 $?
        check "run -t across hosts named" "jwctl: run -t/--tty works with one host only, not across hosts" "$(cat "$TMP/u.err")"
        # A fan-out forwards no stdin: cat reads /dev/null on every host.
        echo secret | timeout 30 "$JWCTL" run --no-prefix --hosts host01,host02 -- cat >"$TMP/u.out" 2>/dev/null
        check "fan-out: no stdin forwarded" "0:" "$?:$(cat "$TMP/u.out")"
        printf 'host01\n# comment\nhost02,host01\n' >"$TMP/hosts.txt"
        timeout 30 "$JWCTL" list --hosts-file "$TMP/hosts.txt" >/dev/null 2>"$TMP/u.err"
        check "hosts file" 0 $?
        check "hosts file: duplicates dropped" "host01 host02" "$(sed -n '/^HOST /,$p' "$TMP/u.err" | tail -n +2 | awk '{printf "%s%s", s, $1; s=" "}')"
        # A bare address with the global credentials: the default certificate
        # is for localhost, so name it by that.
        timeout 30 "$JWCTL" run --hosts "localhost:${PORTS[$DOWN]},localhost:${PORTS[01]}" -- true >/dev/null 2>"$TMP/u.err"
        check "bare addresses" 3 $?
        grep -q "^localhost:${PORTS[01]}  *unreachable .*TLS handshake" "$TMP/u.err" \
                && pass || fail "bare address to a hostNN.test certificate was not refused: $(cat "$TMP/u.err")"
}

test_run_prefixed
test_exit_codes
test_bytes_exact
test_saved_run
test_ctrl_c
test_group_and_failfast
test_logs_and_parallel
test_usage

echo "$PASSES passed, $FAILS failed"
[[ $FAILS -eq 0 ]]
