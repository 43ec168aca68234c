#!/bin/bash
# SPDX-License-Identifier: MIT
#
# jwctl against the real jobworkerd on a loopback port, with the development
# certificates: every command, exit codes, output bytes, JSON, and each error
# of issue 4 with its message and exit code.
#
# Usage: test-jwctl.sh [JWCTL [JOBWORKERD]]   (default: $JW_BUILD_ROOT/jwctl, $JW_BUILD_ROOT/jobworkerd)
# Exits 77 (skip) when jobworkerd or jwctl was not built or a tool is missing.

set -u
set -o pipefail

BUILD=${JW_BUILD_ROOT:-$(pwd)}
SRC=${JW_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
JWCTL=${1:-$BUILD/jwctl}
DAEMON=${2:-$BUILD/jobworkerd}
CERTS=$SRC/certs

skip() { echo "SKIP: $*"; exit 77; }
[[ -x $DAEMON ]] || skip "jobworkerd was not built ($DAEMON)"
[[ -x $JWCTL ]] || skip "jwctl was not built ($JWCTL)"
for tool in python3 sha256sum timeout; do
        command -v $tool >/dev/null || skip "$tool is not installed"
done
[[ -r $CERTS/ca.pem && -r $CERTS/bad/expired.pem ]] || skip "development certificates missing in $CERTS"

TMP=$(mktemp -d /tmp/test-jwctl.XXXXXX)
chmod 755 "$TMP"
DAEMON_PID=
stop_daemon() {
        if [[ -n $DAEMON_PID ]]; then
                kill -TERM "$DAEMON_PID" 2>/dev/null
                for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$DAEMON_PID" 2>/dev/null
                wait "$DAEMON_PID" 2>/dev/null
                DAEMON_PID=
        fi
}
cleanup() {
        local bg
        for bg in $(jobs -p); do kill -KILL "$bg" 2>/dev/null; done
        stop_daemon
        rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

FAILS=0
PASSES=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { PASSES=$((PASSES + 1)); }

# --- the daemon -------------------------------------------------------------
cat >"$TMP/policy.conf" <<'EOF'
alice   self task-manager  cpu=1 memory=1G pids=256
bob     all  analyst
charlie all  task-manager
EOF
mkdir -m 700 "$TMP/state"
"$DAEMON" --listen 127.0.0.1:0 --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem" --ca "$CERTS/ca.pem" \
        --policy "$TMP/policy.conf" --state-dir "$TMP/state" --stop-grace 5s >"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
PORT=
for _ in $(seq 300); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/daemon.log" | head -n1)
        [[ -n $PORT ]] && grep -q ready "$TMP/daemon.log" && break
        PORT=
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
done
if [[ -z $PORT ]]; then
        echo "jobworkerd did not start:"; cat "$TMP/daemon.log"
        exit 1
fi
SERVER=127.0.0.1:$PORT

# Environment for alice; other users by overriding JWCTL_CERT/KEY.
export JWCTL_SERVER=$SERVER JWCTL_CA=$CERTS/ca.pem JWCTL_CERT=$CERTS/alice.pem JWCTL_KEY=$CERTS/alice-key.pem
export XDG_CONFIG_HOME=$TMP/noconfig
cd "$TMP"

# jw ARGS...: jwctl bounded in time; stdout in $TMP/out, stderr in $TMP/err, code in $RC.
jw() {
        timeout 120 "$JWCTL" "$@" >"$TMP/out" 2>"$TMP/err"
        RC=$?
}
as() { # as USER ARGS...
        local u=$1; shift
        JWCTL_CERT=$CERTS/$u.pem JWCTL_KEY=$CERTS/$u-key.pem jw "$@"
}
# expect CODE 'stderr text' DESCRIPTION: the last jw's code, and its one-line stderr containing the text ('' = empty stderr)
expect() {
        local code=$1 text=$2 what=$3
        local err; err=$(cat "$TMP/err")
        if [[ $RC != "$code" ]]; then
                fail "$what: exit code $RC, expected $code (stderr: $err)"
                return 1
        fi
        if [[ -z $text ]]; then
                [[ -z $err ]] || { fail "$what: unexpected stderr: $err"; return 1; }
        else
                if [[ $err != *"$text"* ]]; then
                        fail "$what: stderr '$err' lacks '$text'"; return 1
                fi
                if [[ $(wc -l <"$TMP/err") != 1 || $err != "jwctl: "* ]]; then
                        fail "$what: error is not one 'jwctl: ...' line: $err"; return 1
                fi
        fi
        pass
        return 0
}
expect_code() { # expect_code CODE DESCRIPTION: only the exit code (stderr carries job output)
        if [[ $RC != "$1" ]]; then fail "$2: exit code $RC, expected $1 (stderr: $(head -c 300 "$TMP/err"))"; else pass; fi
}
# bg_jwctl ARGS...: jwctl in the background, bounded; sets P to jwctl's own pid (not timeout's,
# which would pass a signal on twice: to its child and to its process group).
bg_jwctl() {
        timeout 60 "$JWCTL" "$@" >"$TMP/out" 2>"$TMP/err" &
        TPID=$!
        P=
        for _ in $(seq 200); do P=$(pgrep -P $TPID | head -n1); [[ -n $P ]] && break; sleep 0.05; done
        [[ -n $P ]] || fail "jwctl $* did not start within 10 s"
}
# wait_out TEXT DESCRIPTION: waits (at most 20 s) until $TMP/out holds a line TEXT.
wait_out() {
        for _ in $(seq 200); do grep -qx "$1" "$TMP/out" && return 0; sleep 0.1; done
        fail "$2: no line '$1' within 20 s (out: '$(head -c 300 "$TMP/out")')"
        return 1
}
# wait_job_says ID TEXT DESCRIPTION: waits (at most 20 s) until the job's output holds a line TEXT:
# a job says it got past a point of its script (a trap installed) that way.
wait_job_says() {
        for _ in $(seq 100); do
                timeout 60 "$JWCTL" logs "$1" >"$TMP/says" 2>/dev/null && grep -qx "$2" "$TMP/says" && return 0
                sleep 0.1
        done
        fail "$3: job $1 did not print '$2' within 20 s"
        return 1
}
out_is() { # out_is 'text' DESCRIPTION
        if [[ $(cat "$TMP/out") != "$1" ]]; then fail "$2: stdout '$(head -c 300 "$TMP/out")', expected '$1'"; else pass; fi
}
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# --- version, help, usage -----------------------------------------------------
jw --version; expect 0 "" "--version" && [[ $(cat out) == "jwctl "* ]] || fail "--version output: $(cat out)"
for c in "" start run status list logs stop wait; do
        jw $c --help; expect 0 "" "$c --help" && grep -q "^Usage: jwctl" out || fail "$c --help prints no usage"
done
jw; expect 2 "missing command" "no command"
jw frob; expect 2 "unknown command 'frob'" "unknown command"
jw list --frob; expect 2 "unknown option '--frob' for 'list'" "unknown option"
jw status; expect 2 "missing JOB" "missing JOB"
jw logs --offset -5 0123abcd; expect 2 "invalid value '-5' for '--offset'" "bad number"
jw status 0123; expect 2 "at least 8 characters" "prefix too short"
XDG_CONFIG_HOME=$TMP/noconfig JWCTL_SERVER= jw list; expect 2 "no server (HOST:PORT) given" "no server"

# --- start / status / list / wait ---------------------------------------------
jw start -- sh -c 'echo started; exit 3'; expect 0 "" "start"
ID3=$(cat out)
[[ $ID3 =~ $UUID_RE && $(wc -l <out) == 1 ]] && pass || fail "start printed '$(cat out)', not one job id"
jw wait "$ID3"; expect 3 "" "wait on a job exiting 3"
jw wait "${ID3:0:8}"; expect 3 "" "wait by 8-character prefix"
jw status "${ID3:0:8}"; expect 0 "" "status by prefix"
grep -q "^State: *exited with code 3" out && grep -q "^Job: *$ID3" out && pass || fail "status text: $(cat out)"
jw status --json "${ID3^^}"; expect 0 "" "status --json (upper-case id)"
python3 - "$TMP/out" "$ID3" <<'EOF' && pass || fail "status --json content: $(cat "$TMP/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert isinstance(o, dict)
for k in ("job_id", "state", "exit_code", "signal", "signal_name", "stop_requested", "pid", "owner", "command",
          "start_time", "end_time", "start_time_us", "end_time_us", "stdout_bytes", "stderr_bytes",
          "output_truncated", "dropped_bytes"):
    assert k in o, k
assert o["job_id"] == sys.argv[2]
assert o["state"] == "exited" and o["exit_code"] == 3 and o["signal"] is None
assert o["owner"] == "alice" and "exit 3" in o["command"]
assert o["stdout_bytes"] == len("started\n") and o["stderr_bytes"] == 0
assert o["end_time_us"] >= o["start_time_us"] > 0 and o["start_time"].endswith("Z")
assert isinstance(o["pid"], int) and o["pid"] > 0
EOF

jw start -- sleep 60; expect 0 "" "start sleep"
IDS=$(cat out)
jw list; expect 0 "" "list"
head -n1 out | grep -q "^JOB ID  *STATE  *OWNER  *STARTED  *CPU  *MEMORY  *COMMAND$" &&
        grep -q "^$IDS  *running  *alice  .*  -  *-  *sleep 60$" out &&
        grep -q "^$ID3  *exited 3  *alice" out && pass || fail "list text: $(cat out)"
jw list --running --json; expect 0 "" "list --running --json"
python3 - "$TMP/out" "$IDS" "$ID3" <<'EOF' && pass || fail "list --running --json: $(cat "$TMP/out")"
import json, sys
a = json.load(open(sys.argv[1]))
ids = [j["job_id"] for j in a]
assert sys.argv[2] in ids and sys.argv[3] not in ids, ids
assert all(j["state"] == "running" and j["end_time"] is None for j in a)
EOF
jw list --json; expect 0 "" "list --json"
python3 - "$TMP/out" "$IDS" "$ID3" <<'EOF' && pass || fail "list --json: $(cat "$TMP/out")"
import json, sys
a = json.load(open(sys.argv[1]))
ids = [j["job_id"] for j in a]
assert ids.index(sys.argv[3]) < ids.index(sys.argv[2]), ids   # oldest first
EOF

# A command line that is not UTF-8, with an escape sequence: valid JSON, nothing
# raw reaches the terminal (the daemon or jwctl replaces what is unsafe).
jw start -- printf $'\xff\x1b[1m\xc3'; IDU=$(cat out)
jw wait "$IDU"; expect 0 "" "wait for a job with a non-UTF-8 command line"
jw status --json "$IDU"; expect 0 "" "status --json of a non-UTF-8 command line"
python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
raw.decode("utf-8")
c = json.loads(raw)["command"]
assert c.startswith("printf ") and "\x1b" not in c.replace("\x1b[1m", "") and len(c) == len("printf ") + 6, ascii(c)' "$TMP/out" &&
        pass || fail "non-UTF-8 command in JSON: $(cat -v out)"
jw status "$IDU"; python3 -c 'import sys; t = open(sys.argv[1], "rb").read(); t.decode("utf-8"); assert b"\x1b" not in t and b"Command:  printf " in t' "$TMP/out" &&
        pass || fail "non-UTF-8 command in text: $(cat -v out)"

# --- stop -----------------------------------------------------------------------
as bob stop "$IDS"; expect 1 "permission denied for user bob to stop job $IDS" "bob (analyst) stops"
as bob status "$IDS"; expect 0 "" "bob (all, analyst) sees alice's job"
jw stop --grace 2 "${IDS:0:12}"; expect 0 "" "stop"
jw wait "$IDS"; expect 143 "" "wait on a stopped job = 128+SIGTERM"
jw status --json "$IDS"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["state"]=="killed" and o["signal"]==15 and o["signal_name"]=="SIGTERM" and o["stop_requested"] is True and o["exit_code"] is None' "$TMP/out" &&
        pass || fail "status after stop: $(cat out)"
jw stop "$IDS"; expect 1 "job $IDS is not running" "stop a finished job"

# A job ignoring SIGTERM is killed after the grace period, children too.
jw start -- sh -c 'trap "" TERM; sleep 60 & echo ready; sleep 60; wait'; IDT=$(cat out)
wait_job_says "$IDT" ready "a job ignoring SIGTERM"
jw stop --grace 0.3 "$IDT"; expect 0 "" "stop a job ignoring SIGTERM"
jw wait "$IDT"; expect 137 "" "wait = 128+SIGKILL after the grace"

# --- run ------------------------------------------------------------------------
jw run -- true; expect 0 "" "run true"
jw run -- sh -c 'echo out; echo err >&2; exit 3'; expect_code 3 "run exit 3"
[[ $(cat out) == out && $(cat err) == err ]] && pass || fail "run output: out='$(cat out)' err='$(cat err)'"
jw run -- sh -c 'kill -TERM $$'; expect 143 "" "run killed by SIGTERM"
jw run -- sh -c 'kill -KILL $$'; expect 137 "" "run killed by SIGKILL"
jw run --env FOO=bar --env 'E=a b' --cwd /tmp -- sh -c 'echo "$FOO|$E|$(pwd)"'; expect 0 "" "run --env --cwd"
out_is "bar|a b|/tmp" "run --env --cwd"
jw run -- sh -c 'printf "[%s]" "$@"' sh -x --env X=1 -- --help -h; expect 0 "" "run: args starting with '-' after --"
out_is "[-x][--env][X=1][--][--help][-h]" "run: dash arguments reach the job"
jw run printf '%s.' a -b; expect 0 "" "run without --"
out_is "a.-b." "run without --"
jw run -- /nonexistent/program; expect 1 "/nonexistent/program" "run: command cannot be executed (INVALID_ARGUMENT)"
jw start -- /nonexistent/program; expect 1 "/nonexistent/program" "start: command cannot be executed"
[[ ! -s out ]] && pass || fail "failed start printed '$(cat out)'"

# Ctrl-C during run: the job is stopped, its last output still arrives, exit 130.
bg_jwctl run -- sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
wait_out ready "Ctrl-C during run"
kill -INT $P; wait $TPID; RC=$?
expect 130 "" "Ctrl-C during run"
[[ $(cat out) == $'ready\ngot-term' ]] && pass || fail "output after Ctrl-C: '$(cat out)'"
jw list --json
python3 -c '
import json,sys
j=[j for j in json.load(open(sys.argv[1])) if "got-term" in j["command"]][-1]
assert j["state"]=="exited" and j["exit_code"]==7 and j["stop_requested"] is True, j' "$TMP/out" && pass || fail "job after Ctrl-C: $(cat out)"

# Ctrl-C during wait and logs -f: exit 130, the job keeps running.
# logs -f: the job's line in our output shows the stream is open (and the
# signal deferred): a SIGTERM before that would kill jwctl (143), not end it
# with 130. wait: nothing shows it from outside; its connection to the daemon
# is waited for, and a SIGINT before the deferral ends it with 130 as well.
jw start -- sh -c 'echo ready; exec sleep 60'; IDW=$(cat out)
bg_jwctl wait "$IDW"
for _ in $(seq 200); do
        ss -tnpH state established "( dport = :$PORT )" 2>/dev/null | grep -q "pid=$P," && break
        sleep 0.05
done
kill -INT $P; wait $TPID; RC=$?
expect 130 "" "Ctrl-C during wait"
bg_jwctl logs -f "$IDW"; wait_out ready "logs -f"; kill -TERM $P; wait $TPID; RC=$?
expect 130 "" "SIGTERM during logs -f"
jw status "$IDW"; grep -q "^State: *running" out && pass || fail "job ended after interrupting wait: $(cat out)"
jw stop --grace 0 "$IDW"

# --- logs: byte-exact, streams, offsets ------------------------------------------
# 64 MiB of random bytes on each of stdout and stderr, interleaved in random
# chunks; the same program run here gives the expected bytes.
GEN='
import random, sys
r = random.Random(4242)
out = [sys.stdout.buffer, sys.stderr.buffer]
left = [64 << 20, 64 << 20]
while left[0] or left[1]:
    i = r.randrange(2)
    if not left[i]:
        i = 1 - i
    n = min(left[i], r.randrange(1, 1 << 20))
    out[i].write(r.randbytes(n))
    out[i].flush()
    left[i] -= n
'
python3 -c "$GEN" >"$TMP/exp.out" 2>"$TMP/exp.err"
EXP_OUT=$(sha256sum <exp.out | cut -d' ' -f1)
EXP_ERR=$(sha256sum <exp.err | cut -d' ' -f1)
same() { # same FILE SHA DESCRIPTION
        if [[ $(sha256sum <"$1" | cut -d' ' -f1) == "$2" ]]; then pass; else fail "$3: $(stat -c %s "$1") bytes, sha256 differs"; fi
}
timeout 300 "$JWCTL" run -- python3 -c "$GEN" >"$TMP/run.out" 2>"$TMP/run.err"; RC=$?
[[ $RC == 0 ]] && pass || fail "run of the 64 MiB job: exit $RC: $(tail -c 300 run.err)"
same run.out "$EXP_OUT" "run: stdout of the 64 MiB job"
same run.err "$EXP_ERR" "run: stderr of the 64 MiB job"
jw start -- python3 -c "$GEN"; IDB=$(cat out)
jw wait "$IDB"; expect 0 "" "wait for the 64 MiB job"

timeout 300 "$JWCTL" logs "$IDB" >"$TMP/l.out" 2>"$TMP/l.err"; RC=$?
[[ $RC == 0 ]] && pass || fail "logs: exit $RC"
same l.out "$EXP_OUT" "logs: stdout"
same l.err "$EXP_ERR" "logs: stderr"
timeout 300 "$JWCTL" logs --stdout "$IDB" >"$TMP/l.out" 2>"$TMP/l.err"; RC=$?
[[ $RC == 0 && ! -s l.err ]] && pass || fail "logs --stdout: exit $RC, $(stat -c %s l.err) bytes on stderr"
same l.out "$EXP_OUT" "logs --stdout"
timeout 300 "$JWCTL" logs --stderr "$IDB" >"$TMP/l.out" 2>"$TMP/l.err"; RC=$?
[[ $RC == 0 && ! -s l.out ]] && pass || fail "logs --stderr: exit $RC, $(stat -c %s l.out) bytes on stdout"
same l.err "$EXP_ERR" "logs --stderr"
timeout 300 "$JWCTL" logs -f --stdout "$IDB" >"$TMP/l.out" 2>/dev/null; RC=$?
[[ $RC == 0 ]] && pass || fail "logs -f of an ended job: exit $RC"
same l.out "$EXP_OUT" "logs -f --stdout"

# --offset within one stream
timeout 300 "$JWCTL" logs --stdout --offset 12345679 "$IDB" >"$TMP/l.out"; RC=$?
tail -c +12345680 exp.out >exp.part
[[ $RC == 0 ]] && cmp -s l.out exp.part && pass || fail "logs --stdout --offset 12345679: $(stat -c %s l.out) bytes, differs"
timeout 300 "$JWCTL" logs --stderr --offset 67108863 "$IDB" 2>"$TMP/l.err" >/dev/null; RC=$?
[[ $RC == 0 ]] && cmp -s l.err <(tail -c 1 exp.err) && pass || fail "logs --stderr --offset (last byte)"
# --offset over both streams counts the bytes of both, in capture order: what
# comes after offset N is a suffix of each stream, 128 MiB - N bytes in all.
N=50000001
timeout 300 "$JWCTL" logs --offset $N "$IDB" >"$TMP/l.out" 2>"$TMP/l.err"; RC=$?
python3 - "$TMP" $N <<'EOF' && [[ $RC == 0 ]] && pass || fail "logs --offset $N over both streams (exit $RC)"
import sys
d, n = sys.argv[1], int(sys.argv[2])
got_o, got_e = open(d + "/l.out", "rb").read(), open(d + "/l.err", "rb").read()
exp_o, exp_e = open(d + "/exp.out", "rb").read(), open(d + "/exp.err", "rb").read()
assert len(got_o) + len(got_e) == len(exp_o) + len(exp_e) - n, (len(got_o), len(got_e))
assert exp_o.endswith(got_o) and exp_e.endswith(got_e)
EOF

# Resume an interrupted transfer: the first jwctl loses its reader after 10 MB
# (exit 141, no message), the second continues from the size of what arrived.
timeout 300 "$JWCTL" logs --stdout "$IDB" 2>"$TMP/err" | head -c 10000000 >"$TMP/part"
codes=("${PIPESTATUS[@]}")
[[ ${codes[0]} == 141 && ! -s err ]] && pass || fail "logs into a closed pipe: exit ${codes[0]}, stderr '$(cat err)'"
timeout 300 "$JWCTL" logs --stdout --offset "$(stat -c %s part)" "$IDB" >>"$TMP/part"; RC=$?
[[ $RC == 0 ]] && pass || fail "resumed logs: exit $RC"
same part "$EXP_OUT" "logs resumed with --offset"
rm -f exp.out exp.err exp.part run.out run.err l.out l.err part

# logs -f follows a running job to its end.
jw start -- sh -c 'echo one; sleep 1; echo two >&2; sleep 1; echo three'; IDF=$(cat out)
jw logs -f "$IDF"; expect_code 0 "logs -f"
[[ $(cat out) == $'one\nthree' && $(cat err) == two ]] && pass || fail "logs -f: out='$(cat out)' err='$(cat err)'"

# --- visibility, permissions, not found -------------------------------------------
as charlie start -- sleep 30; IDC=$(cat out)
jw status "$IDC"; expect 1 "job $IDC not found" "alice looks at charlie's job"
jw status "${IDC:0:8}"; expect 1 "not found" "alice's prefix of charlie's job"
jw stop "$IDC"; expect 1 "job $IDC not found" "alice stops charlie's job"
as bob start -- true; expect 1 "permission denied for user bob to start jobs" "bob (analyst) starts"
as bob logs "$ID3"; expect 0 "" "bob reads alice's output"
out_is "started" "bob reads alice's output"
as charlie stop --grace 0 "$IDC"; expect 0 "" "charlie stops his job"
jw status ffffffff; expect 1 "job ffffffff not found" "unknown prefix"
jw logs 00000000-0000-4000-8000-000000000000; expect 1 "not found" "unknown full id"

# --- limits and isolation (this daemon runs without cgroups) ------------------------
jw start --cpu 2 -- true; expect 1 "permission denied for user alice to start jobs: alice may use at most 1 CPU (asked 2)" \
        "start above alice's CPU bound"
jw run --memory 2G -- true; expect 1 "alice may use at most 1G bytes of memory (asked 2G)" "run above alice's memory bound"
jw start --pids 257 -- true; expect 1 "alice may use at most 256 processes (asked 257)" "above alice's pids bound"
jw start --cpu 0.5 --pids 64 -- true; expect 1 "cannot start jobs: resource limits need cgroup v2" "limits without cgroups"
as charlie start --cpu 64 --memory 1T -- true; expect 1 "resource limits need cgroup v2" "charlie has no bounds"
as charlie start --io-read-bps /dev/null=1M -- true; expect 1 "io device '/dev/null' is a character device" \
        "io limit on a character device"
jw start --cpu 0 -- true; expect 2 "invalid value '0' for '--cpu'" "--cpu 0"
jw start --isolate mount -- true; expect 2 "invalid value 'mount' for '--isolate'" "--isolate mount"
jw run --isolate pid -- sh -c 'echo $$'; expect_code 0 "run --isolate pid"
out_is "1" "the job is PID 1 of its namespace"
jw run --isolate net,tmp -- sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; ls -A /tmp | wc -l'
expect_code 0 "run --isolate net,tmp"
out_is $'lo\n0' "only loopback, an empty /tmp"
jw status "$ID3"; expect 0 "" "status without a cgroup"
grep -q "^Cgroup:   none (CPU time, memory and OOM kills are not measured)$" out && pass || fail "status text: $(cat out)"
jw status --json "$ID3"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["has_cgroup"] is False and o["cpu_usec"] is None and o["memory_peak_bytes"] is None and o["oom_kills"] is None and o["oom_killed"] is False, o' "$TMP/out" &&
        pass || fail "status --json resources: $(cat out)"

# The same with a daemon that gives jobs cgroups (a fresh directory on the
# cgroup2 mount; this machine's has no controllers).
CG2=$(awk '$(NF-2) == "cgroup2" || $9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
CGDIR=
[[ -n $CG2 ]] && CGDIR=$CG2/jw-test-jwctl-$$ && mkdir "$CGDIR" 2>/dev/null || CGDIR=
if [[ -z $CGDIR ]]; then
        echo "note: cannot create a cgroup v2 directory (cgroup2 mount: '${CG2:-none}'): cgroup checks skipped"
else
        "$DAEMON" --listen 127.0.0.1:0 --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem" --ca "$CERTS/ca.pem" \
                --policy "$TMP/policy.conf" --state-dir "$TMP/state2" --cgroup "$CGDIR" >"$TMP/daemon2.log" 2>&1 &
        D2=$!
        PORT2=
        for _ in $(seq 300); do
                PORT2=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/daemon2.log" | head -n1)
                [[ -n $PORT2 ]] && grep -q ready "$TMP/daemon2.log" && break
                PORT2=
                sleep 0.1
        done
        [[ -n $PORT2 ]] || fail "the jobworkerd with cgroups did not start: $(cat "$TMP/daemon2.log")"
        jw --server "127.0.0.1:$PORT2" run -- sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo done'
        expect_code 0 "run with a cgroup"
        jw --server "127.0.0.1:$PORT2" list --json
        python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))[-1]; assert o["has_cgroup"] is True and o["cpu_usec"] > 0 and o["oom_kills"] == 0 and o["oom_killed"] is False, o' "$TMP/out" &&
                pass || fail "list --json with a cgroup: $(cat out)"
        ID5=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["job_id"])' "$TMP/out")
        jw --server "127.0.0.1:$PORT2" status "$ID5"; expect 0 "" "status with a cgroup"
        grep -q "^CPU time: [0-9]" out && ! grep -q "^Cgroup:" out && pass || fail "status text with a cgroup: $(cat out)"
        for c in cpu memory pids; do
                grep -qw $c "$CGDIR/cgroup.controllers" && continue
                case $c in cpu) o=(--cpu 0.5);; memory) o=(--memory 64M);; pids) o=(--pids 32);; esac
                jw --server "127.0.0.1:$PORT2" start "${o[@]}" -- true
                expect 1 "cannot start jobs: the $c controller is not available for jobs on this host" "missing $c controller"
        done
        kill -TERM $D2; wait $D2
        rmdir "$CGDIR"/* "$CGDIR" 2>/dev/null
fi

# --- config file fallback ----------------------------------------------------------
mkdir -p "$TMP/xdg/jwctl"
cp "$CERTS/ca.pem" "$TMP/xdg/jwctl/ca.pem"
cat >"$TMP/xdg/jwctl/config" <<EOF
# test config
server = $SERVER
cert = $CERTS/alice.pem
key = $CERTS/alice-key.pem
ca = ca.pem
EOF
env -u JWCTL_SERVER -u JWCTL_CERT -u JWCTL_KEY -u JWCTL_CA XDG_CONFIG_HOME=$TMP/xdg \
        timeout 60 "$JWCTL" status "$ID3" >"$TMP/out" 2>"$TMP/err"; RC=$?
expect 0 "" "settings from the config file"
echo "serverr = x" >"$TMP/xdg/jwctl/config"
XDG_CONFIG_HOME=$TMP/xdg jw list; expect 2 "config:1: unknown key 'serverr'" "bad config file"

# --- TLS errors ------------------------------------------------------------------------
as bad/expired list; expect 3 "the server refused our certificate: certificate expired" "expired client certificate"
as bad/untrusted list; expect 3 "the server refused our certificate: not trusted" "client certificate of another CA"
as bad/server-as-client list; expect 3 "not valid for client authentication" "client certificate without clientAuth"
jw --ca "$CERTS/bad/other-ca.pem" list; expect 3 "server certificate not trusted" "server certificate not trusted"
jw --key "$CERTS/bob-key.pem" list; expect 3 "does not match" "key of another certificate"
jw --cert "$TMP/missing.pem" list; expect 2 "missing.pem" "missing certificate file"
jw --server "localhost:$PORT" list; expect 0 "" "server name checked: localhost"
# The server certificate is for localhost/127.0.0.1/::1 only.
jw --server "127.0.0.2:$PORT" list; expect 3 "127.0.0.2" "server certificate not valid for the name dialled"

# --- connection errors ------------------------------------------------------------------
python3 -c '
import socket, time, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$TMP/silent.port" &
SILENT=$!
for _ in $(seq 200); do [[ -s silent.port ]] && break; sleep 0.1; done
jw --timeout 1 --server "127.0.0.1:$(cat silent.port)" list; expect 3 "timed out" "server that never answers"
kill $SILENT 2>/dev/null; wait $SILENT 2>/dev/null
jw --server nosuchhost.invalid:7443 list; expect 3 "cannot connect to nosuchhost.invalid:7443" "unknown host name"
stop_daemon
if ss -ltn 2>/dev/null | grep -q ":$PORT "; then echo "after jobworkerd ended, something still listens on $PORT:"; ss -ltnp | grep ":$PORT "; fi
jw list; expect 3 "cannot connect to $SERVER: connection refused" "daemon stopped"
jw run -- true; expect 3 "cannot connect to $SERVER: connection refused" "run, daemon stopped"

echo "$PASSES checks passed, $FAILS failed"
[[ $FAILS == 0 ]]
