# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2016
# (SC2016: the single-quoted eval conditions of checks expand when they run.)
#
# Per-job resource limits, enforced by the kernel the package runs on
# (issue 6, "Tests it must have"). Sourced by tests/system/run while the
# booted system is up and the daemon serves, before the purge; uses its
# helpers (inside, put, jw, out, json, check, pass, fail, wait_for, expect_rc)
# and variables (MODE, WORK, JWCTL, TEST_POLICY).
#
# In the QEMU VM (--vm: Debian 12's kernel 6.1, cpu io memory pids delegated
# to the service) every check runs:
#  1. memory: a job touching 256 MiB under --memory 64M is OOM-killed, and
#     status says so (killed SIGKILL, oom_killed, oom_kills >= 1, peak at the
#     limit) -- distinguished from a user stop ending in SIGKILL and from a
#     job whose child was OOM-killed while the job itself exited normally;
#  2. cpu: a busy loop under --cpu 0.2 uses well below half a CPU (cpu_usec
#     from status over wall time), a busy loop without a limit in the same VM
#     at the same time is the baseline;
#  3. pids: a fork bomb under --pids 32 never has more than 32 tasks, its
#     forks fail (pids.events), and jwctl stop ends it leaving nothing;
#  4. stop kills a double-forked, setsid'd grandchild; the same grandchild is
#     killed when the job's main process exits by itself;
#  5. io: an O_DIRECT read (and write) of the VM's scratch disk
#     (/dev/disk/by-id/virtio-jw-scratch, tests/vm/vm-lib.sh) under
#     --io-read-bps DEV=4M (--io-write-bps) is at least 2x slower than
#     without, and not faster than the limit allows;
#  6. errors: requests above alice's policy bounds are PERMISSION_DENIED with
#     the bound in the message and start nothing; a limit whose controller is
#     missing is refused naming the controller -- controller removed from the
#     jobs cgroup at run time, not delegated by systemd (Delegate=cpu memory
#     pids on jobworker-jobs.service) at daemon start, and no cgroups at all (--cgroup off);
#  7. isolation: --isolate pid,net,tmp (PID 1, only loopback, empty /tmp);
#  8. tasks: under a tiny TasksMax of jobworker-jobs.service a Start fails with
#     RESOURCE_EXHAUSTED ("out of resources") and the daemon logs a warning.
# Each check that needs what the system lacks (a controller, the scratch
# disk, per-job cgroups at all -- e.g. in the nspawn container on a host whose
# controllers are bound to cgroup v1) is skipped with a printed reason; the
# checks that need none (policy bounds, missing-controller errors, stop of an
# escaped grandchild when jobs have a cgroup) run there too.

L_T0=$SECONDS
L_SKIPS=0
L_FAILS0=$FAILS
lskip() { echo "SKIP: limits: $*"; L_SKIPS=$((L_SKIPS + 1)); }
lsay() { echo "limits: $*"; }
# fcalc EXPR: floating point arithmetic (awk), 3 decimals
fcalc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
# fcmp EXPR: true when the awk condition holds
fcmp() { awk "BEGIN { exit !($1) }"; }
now_ns() { date +%s%N; }
# num TEXT: TEXT when it is a number, else 0
num() { if [[ $1 =~ ^[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$ ]]; then echo "$1"; else echo 0; fi; }

# jst ID EXPR: the job's status field(s) (a python expression over o)
jst() { jw status --json "$1" && json "$2"; }
ended() { [ "$(jst "$1" 'o["state"]')" != running ]; }
wait_end() { wait_for "$2" ended "$1"; }
# jw_as USER ARGS...: jwctl with USER's certificate ($WORK/client/USER*.pem)
jw_as() {
        local u=$1; shift
        JWCTL_CERT=$WORK/client/$u.pem JWCTL_KEY=$WORK/client/$u-key.pem \
                timeout 90 "$JWCTL" --timeout 60 "$@" >"$WORK/out" 2>"$WORK/err"
        RC=$?
}
err1() { head -c 300 "$WORK/err" | tr '\n' ' '; }
no_proc() { ! inside pgrep -u jobworker -f "$1" >/dev/null; }
gone() { inside test ! -e "$1"; }

# ldiag: what the booted system shows, for a step that did not work
ldiag() {
        inside sh -c 'uptime; systemctl is-active jobworker.service; journalctl -q -n 15 --no-pager -u jobworker.service' 2>&1 |
                sed 's/^/  system: /'
        if [ "$MODE" = vm ] && [ -r "$WORK/console.log" ]; then
                tail -n 25 "$WORK/console.log" | sed 's/^/  console: /'
        fi
}

# --- where the jobs' cgroups are ------------------------------------------------
jw list >/dev/null
# The jobs' cgroups are below jobworker-jobs.service (its "jobs" child), the
# unit that keeps them across restarts of the daemon; the daemon itself runs
# in jobworker.service.
L_MAIN=$(inside systemctl show -p MainPID --value jobworker.service)
L_SUP=$(inside cat "/proc/$L_MAIN/cgroup" 2>/dev/null | sed -n 's/^0:://p')
L_UNIT_CG=$(inside systemctl show -p ControlGroup --value jobworker-jobs.service)
L_JOBS=
L_CTL=
if [ -n "$L_UNIT_CG" ] && inside test -d "/sys/fs/cgroup$L_UNIT_CG/jobs"; then
        L_JOBS=/sys/fs/cgroup$L_UNIT_CG/jobs
        L_CTL=$(inside cat "$L_JOBS/cgroup.subtree_control" 2>/dev/null)
fi
have() { [[ " $L_CTL " == *" $1 "* ]]; }
jobcg() { echo "$L_JOBS/job-$1"; }
L_DEV=/dev/disk/by-id/virtio-jw-scratch
L_HAVE_DEV=no
inside test -b "$L_DEV" && L_HAVE_DEV=yes
if [ -n "$L_JOBS" ]; then
        facts=
        for f in cgroup.kill memory.peak memory.swap.max memory.events pids.peak io.max cpu.max; do
                if inside test -e "$L_JOBS/$f"; then facts="$facts $f:yes"; else facts="$facts $f:no"; fi
        done
        lsay "kernel $(inside uname -r); jobs in ${L_JOBS#/sys/fs/cgroup}; controllers for jobs: '${L_CTL}'; files:$facts"
else
        lsay "kernel $(inside uname -r); the daemon gives jobs no cgroup (its own: '$L_SUP')"
fi

# --- 1. memory.max: OOM kill, and status says so ---------------------------------
if ! have memory; then
        lskip "memory: the memory controller is not available for jobs here ('$L_CTL')"
else
        # dd's one 256 MiB buffer is touched by read(2) from /dev/zero: the
        # job's main process itself is what the OOM killer picks.
        jw start --memory 64M -- dd if=/dev/zero of=/dev/null bs=256M count=1
        expect_rc 0 "limits/memory: start dd with a 256 MiB buffer under --memory 64M"
        id=$(out)
        wait_end "$id" 60
        jw status --json "$id"
        got=$(json 'o["state"], o["signal_name"], o["oom_killed"], o["stop_requested"]')
        check "limits/memory: over memory.max the job is OOM-killed: killed SIGKILL, oom_killed, no stop (got $got)" \
                test "$got" = "killed SIGKILL True False"
        kills=$(json 'o["oom_kills"]') peak=$(json 'o["memory_peak_bytes"]')
        check "limits/memory: oom_kills >= 1 (got $kills)" test "${kills:-0}" -ge 1
        check "limits/memory: memory peak at the limit, 32..64 MiB (got $peak bytes)" \
                eval '[ "${peak:-0}" -ge $((32 << 20)) ] && [ "${peak:-0}" -le $((64 << 20)) ]'
        lsay "memory: dd of 256 MiB under 64M: $got, oom_kills $kills, memory_peak_bytes $peak"
        jw status "$id"
        check "limits/memory: jwctl status says the OOM killer ended it ($(grep -i -m1 'state' "$WORK/out"))" \
                grep -qi 'out of memory' "$WORK/out"

        # Under the limit: the same program runs to its end.
        jw start --memory 128M -- dd if=/dev/zero of=/dev/null bs=32M count=1
        id=$(out)
        wait_end "$id" 60
        jw status --json "$id"
        got=$(json 'o["state"], o["exit_code"], o["oom_kills"], o["oom_killed"]') peak=$(json 'o["memory_peak_bytes"]')
        check "limits/memory: 32 MiB under --memory 128M exits 0 without OOM (got $got)" test "$got" = "exited 0 0 False"
        check "limits/memory: its memory peak covers the 32 MiB buffer (got $peak bytes)" \
                eval '[ "${peak:-0}" -ge $((32 << 20)) ] && [ "${peak:-0}" -le $((128 << 20)) ]'

        # A child OOM-killed while the job goes on: counted, but the job was
        # not ended by it.
        jw start --memory 64M -- sh -c 'dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null; echo "dd=$?"'
        id=$(out)
        wait_end "$id" 60
        jw status --json "$id"
        got=$(json 'o["state"], o["exit_code"], o["oom_killed"]') kills=$(json 'o["oom_kills"]')
        jw logs "$id"
        check "limits/memory: a child OOM-killed, the job exits by itself: exited 0, oom_killed False, oom_kills >= 1 (got $got, $kills, output '$(out)')" \
                eval '[ "$got" = "exited 0 False" ] && [ "${kills:-0}" -ge 1 ] && [ "$(out)" = dd=137 ]'

        # A user stop ending in SIGKILL is not an OOM kill.
        jw start --memory 64M -- sh -c 'trap "" TERM; sleep 1000'
        id=$(out)
        got=$(inside sh -c "cd '$(jobcg "$id")' && echo \$(cat memory.max) \$(cat memory.swap.max 2>/dev/null || echo no-swap-file)")
        check "limits/memory: --memory 64M writes memory.max 67108864 and memory.swap.max 0 (got $got)" \
                eval '[ "$got" = "67108864 0" ] || [ "$got" = "67108864 no-swap-file" ]'
        jw stop --grace 1 "$id"
        wait_end "$id" 30
        jw status --json "$id"
        got=$(json 'o["state"], o["signal_name"], o["stop_requested"], o["oom_killed"], o["oom_kills"]')
        check "limits/memory: a stop ending in SIGKILL is told apart: killed SIGKILL, stop_requested, not OOM (got $got)" \
                test "$got" = "killed SIGKILL True False 0"
fi

# --- 2. cpu.max: 0.2 CPU -----------------------------------------------------------
if ! have cpu; then
        lskip "cpu: the cpu controller is not available for jobs here ('$L_CTL')"
else
        jw start --cpu 0.2 -- sh -c 'while :; do :; done'
        expect_rc 0 "limits/cpu: start a busy loop under --cpu 0.2"
        idl=$(out)
        jw start -- sh -c 'while :; do :; done'
        idb=$(out)
        check "limits/cpu: cpu.max of the job is '20000 100000' (got '$(inside cat "$(jobcg "$idl")/cpu.max")')" \
                test "$(inside cat "$(jobcg "$idl")/cpu.max")" = "20000 100000"
        sleep 1
        # sample ID: "NS USEC" -- host time in the middle of the status call
        sample() { local a b; a=$(now_ns); jw status --json "$1"; b=$(now_ns); echo "$(((a + b) / 2)) $(json 'o["cpu_usec"]')"; }
        read -r tl1 cl1 < <(sample "$idl")
        read -r tb1 cb1 < <(sample "$idb")
        sleep 4
        read -r tl2 cl2 < <(sample "$idl")
        read -r tb2 cb2 < <(sample "$idb")
        rl=$(fcalc "($cl2 - $cl1) * 1000 / ($tl2 - $tl1)")
        rb=$(fcalc "($cb2 - $cb1) * 1000 / ($tb2 - $tb1)")
        lsay "cpu: --cpu 0.2 busy loop used $rl CPU, the unlimited one $rb CPU, over $(fcalc "($tl2 - $tl1) / 1e9") s"
        check "limits/cpu: under --cpu 0.2 a busy loop uses well below half a CPU (used $rl)" fcmp "$rl < 0.35"
        check "limits/cpu: ... and it did run (used $rl > 0.05)" fcmp "$rl > 0.05"
        if fcmp "$rb >= 0.5"; then
                check "limits/cpu: the unlimited baseline uses at least twice as much ($rb vs $rl)" fcmp "$rb >= 2 * $rl"
        else
                lskip "cpu: the unlimited baseline got only $rb CPU (host overloaded?): no comparison"
        fi
        jw stop --grace 1 "$idl"
        jw stop --grace 1 "$idb"
        wait_end "$idl" 30
        wait_end "$idb" 30
        check "limits/cpu: both busy loops stopped" eval 'ended "$idl" && ended "$idb"'
fi

# --- 3. pids.max: a fork bomb ---------------------------------------------------------
if ! have pids; then
        lskip "pids: the pids controller is not available for jobs here ('$L_CTL')"
else
        # Every bash forks copies of itself forever; a failed fork is retried
        # (bash backs off) and never ends the bomb.
        jw start --pids 32 -- bash -c 'b() { while :; do b & done; }; b'
        expect_rc 0 "limits/pids: start a fork bomb under --pids 32"
        id=$(out)
        cg=$(jobcg "$id")
        forks_failed() { [ "$(inside sed -n 's/^max //p' "$cg/pids.events")" -gt 0 ]; }
        wait_for 60 forks_failed
        check "limits/pids: the bomb's forks fail at the limit (pids.events: $(inside cat "$cg/pids.events" | tr '\n' ' '))" forks_failed
        most=0 most_procs=0
        for _ in 1 2 3 4 5 6; do
                n=$(inside cat "$cg/pids.current")
                p=$(inside cat "$cg/cgroup.threads" | wc -l)
                [ "${n:-0}" -gt "$most" ] && most=$n
                [ "$p" -gt "$most_procs" ] && most_procs=$p
                sleep 0.5
        done
        check "limits/pids: never more than 32 tasks (pids.current at most $most, cgroup.threads at most $most_procs)" \
                eval '[ "$most" -le 32 ] && [ "$most_procs" -le 32 ] && [ "$most" -ge 16 ]'
        if inside test -e "$cg/pids.peak"; then
                peak=$(inside cat "$cg/pids.peak")
                check "limits/pids: pids.peak is the limit, 32 (got $peak)" test "$peak" = 32
        else
                lskip "pids: no pids.peak on this kernel"
        fi
        L_t0=$SECONDS
        jw stop --grace 2 "$id"
        expect_rc 0 "limits/pids: jwctl stop of the fork bomb"
        wait_end "$id" 60
        jw status --json "$id"
        got=$(json 'o["state"], o["signal_name"], o["stop_requested"]')
        check "limits/pids: the bomb ended by the stop, in $((SECONDS - L_t0)) s (got $got)" \
                eval '[[ $got == "killed SIG"*" True" ]]'
        wait_for 10 gone "$cg"
        check "limits/pids: its cgroup is removed" gone "$cg"
        check "limits/pids: no process of the bomb left ($(inside pgrep -a -u jobworker | head -n3 | tr '\n' '|'))" \
                not inside pgrep -u jobworker -x bash
fi

# --- 4. stop kills a double-forked, setsid'd grandchild -------------------------------
if [ -z "$L_JOBS" ]; then
        lskip "grandchild: jobs get no cgroup here, stop reaches the process group only"
else
        jw start -- sh -c 'setsid sh -c "sleep 1001 & exit 0"; sleep 1002'
        expect_rc 0 "limits/stop: start a job whose double-forked grandchild runs setsid'd"
        id=$(out)
        gc_pid() { local p; p=$(inside pgrep -u jobworker -f '^sleep 1001$') && [ -n "$p" ] && echo "${p%%$'\n'*}"; }
        wait_for 20 gc_pid
        gc=$(gc_pid)
        jpid=$(jst "$id" 'o["pid"]')
        gsid=$(inside ps -o sid= -p "${gc:-1}" | tr -d ' ') jsid=$(inside ps -o sid= -p "${jpid:-1}" | tr -d ' ')
        check "limits/stop: the grandchild escaped: own session, not the job's child (pid $gc, sid $gsid; job pid $jpid, sid $jsid; parent $(inside ps -o ppid= -p "${gc:-1}" | tr -d ' '))" \
                eval '[ -n "$gc" ] && [ "$gsid" != "$jsid" ] && [ "$(inside ps -o ppid= -p "$gc" | tr -d " ")" != "$jpid" ]'
        check "limits/stop: the grandchild is in the job's cgroup" inside grep -qx "$gc" "$(jobcg "$id")/cgroup.procs"
        jw stop --grace 1 "$id"
        wait_end "$id" 30
        wait_for 10 no_proc '^sleep 100[12]$'
        check "limits/stop: after jwctl stop neither the job nor its setsid'd grandchild is left ($(inside pgrep -a -u jobworker | head -n3 | tr '\n' '|'))" \
                no_proc '^sleep 100[12]$'
        check "limits/stop: the job's cgroup is removed" gone "$(jobcg "$id")"

        # The main process exits by itself: what it left running dies with it.
        jw start -- sh -c 'setsid sh -c "sleep 1003 & exit 0"; sleep 4; exit 0'
        id=$(out)
        gc1003() { inside pgrep -u jobworker -f '^sleep 1003$' >/dev/null; }
        wait_for 4 gc1003
        seen=$?
        wait_end "$id" 30
        wait_for 10 no_proc '^sleep 1003$'
        check "limits/stop: a setsid'd grandchild (seen: $([ $seen = 0 ] && echo yes || echo no)) dies when the job exits by itself (job: $(jst "$id" 'o["state"], o["exit_code"]'))" \
                eval '[ $seen = 0 ] && no_proc "^sleep 1003$" && [ "$(jst "$id" "o[\"state\"], o[\"exit_code\"]")" = "exited 0" ]'
fi

# --- 5. io.max: an O_DIRECT read and write of the scratch disk ---------------------------
if ! have io; then
        lskip "io: the io controller is not available for jobs here ('$L_CTL')"
elif [ $L_HAVE_DEV = no ]; then
        lskip "io: no scratch disk $L_DEV here (only the VM has one, tests/vm/vm-lib.sh)"
else
        # The jobs run as the policy's account: the scratch disk is theirs.
        # (udev resets the mode after a write: set it before every job.)
        dev_open() { inside chmod 0666 "$(inside readlink -f "$L_DEV")"; }
        # dd_secs ID: seconds dd reported for the job's copy
        dd_secs() { jw logs "$1"; sed -n 's/.* copied, \([0-9.e+-]*\) s,.*/\1/p' "$WORK/out" "$WORK/err" | head -n1; }
        # dd_job ARGS...: start dd (the arguments after the limits), wait, print its seconds
        dd_job() {
                local id
                dev_open
                jw start "$@"
                [ "$RC" = 0 ] || { echo "start failed: $(err1)"; return; }
                id=$(out)
                wait_end "$id" 90
                [ "$(jst "$id" 'o["state"], o["exit_code"]')" = "exited 0" ] || { echo "dd failed: $(jst "$id" 'o["state"], o["exit_code"]')"; return; }
                dd_secs "$id"
        }
        MIB=12
        free_read=$(dd_job -- dd if="$L_DEV" of=/dev/null bs=1M count=$MIB iflag=direct)
        dev_open
        jw start --io-read-bps "$L_DEV=4M" -- dd if="$L_DEV" of=/dev/null bs=1M count=$MIB iflag=direct
        expect_rc 0 "limits/io: start an O_DIRECT read under --io-read-bps $L_DEV=4M"
        id=$(out)
        iomax=$(inside cat "$(jobcg "$id")/io.max" 2>/dev/null)
        wait_end "$id" 90
        lim_read=$(dd_secs "$id")
        read -r a b < <(inside stat -Lc '%t %T' "$L_DEV")
        majmin=$((16#${a:-0})):$((16#${b:-0}))
        check "limits/io: io.max of the job: '$majmin rbps=4194304 wbps=max ...' (got '$iomax')" \
                eval '[[ $iomax == "$majmin rbps=4194304 wbps=max"* ]]'
        lsay "io: O_DIRECT read of $MIB MiB: $free_read s without a limit, $lim_read s under 4 MiB/s"
        free_read=$(num "$free_read") lim_read=$(num "$lim_read")
        check "limits/io: the read limit slows the O_DIRECT read at least 2x ($lim_read s vs $free_read s)" \
                fcmp "$lim_read > 0 && $free_read > 0 && $lim_read >= 2 * $free_read"
        check "limits/io: ... and it is no faster than 4 MiB/s allows, with 1.5x slack ($lim_read s >= $(fcalc "$MIB / 6") s)" \
                fcmp "$lim_read >= $MIB / 6"

        MIB=8
        free_write=$(dd_job -- dd if=/dev/zero of="$L_DEV" bs=1M count=$MIB oflag=direct)
        lim_write=$(dd_job --io-write-bps "$L_DEV=4M" -- dd if=/dev/zero of="$L_DEV" bs=1M count=$MIB oflag=direct)
        lsay "io: O_DIRECT write of $MIB MiB: $free_write s without a limit, $lim_write s under 4 MiB/s"
        free_write=$(num "$free_write") lim_write=$(num "$lim_write")
        check "limits/io: the write limit slows the O_DIRECT write at least 2x and to about 4 MiB/s ($lim_write s vs $free_write s)" \
                fcmp "$lim_write > 0 && $free_write > 0 && $lim_write >= 2 * $free_write && $lim_write >= $MIB / 6"
fi

# --- 6. errors: policy bounds, missing controllers -------------------------------------
inside mkdir -p /root/alice
inside jobworker-certs issue alice --out /root/alice >"$WORK/issue-alice.log" 2>&1
for f in alice.pem alice-key.pem; do inside cat "/root/alice/$f" >"$WORK/client/$f"; done
chmod 600 "$WORK/client/alice-key.pem"
printf '%s\nalice self task-manager jobworker cpu=1 memory=1G pids=256\n' "$TEST_POLICY" | put /etc/jobworker/policy.conf
inside systemctl reload jobworker.service
alice_allowed() { jw_as alice run -- true; [ "$RC" = 0 ]; }
wait_for 15 alice_allowed
check "limits/errors: alice (bounds cpu=1 memory=1G pids=256) may start jobs after the reload (rc $RC: $(err1))" alice_allowed
jw_as alice list --json
alice_jobs=$(json 'len(o)')
jw_as alice start --cpu 2 -- true
check "limits/errors: alice asking --cpu 2: exit 1, permission denied naming the bound (rc $RC: $(err1))" \
        eval '[ "$RC" = 1 ] && grep -qi "permission denied" "$WORK/err" && grep -q "at most 1 CPU (asked 2)" "$WORK/err"'
jw_as alice start --memory 2G -- true
check "limits/errors: alice asking --memory 2G: permission denied naming the bound (rc $RC: $(err1))" \
        eval '[ "$RC" = 1 ] && grep -qi "permission denied" "$WORK/err" && grep -q "at most 1G" "$WORK/err"'
jw_as alice start --pids 1000 -- true
check "limits/errors: alice asking --pids 1000: permission denied naming the bound (rc $RC: $(err1))" \
        eval '[ "$RC" = 1 ] && grep -qi "permission denied" "$WORK/err" && grep -q "at most 256" "$WORK/err"'
jw_as alice list --json
check "limits/errors: the refused requests started nothing (alice has $(json 'len(o)') job(s), had $alice_jobs)" \
        test "$(json 'len(o)')" = "$alice_jobs"

# A limit whose controller is missing. Where controllers are there, one is
# taken away from the jobs cgroup while the daemon runs (an administrator's
# doing); where none is (nspawn on a cgroup v1 host), that is the case.
# The message is "the X controller is not available for jobs on this host",
# also for a controller taken away while the daemon runs (it reads them
# again for every start with limits).
refused_for() { # refused_for CONTROLLER: the last start was refused naming it, nothing started
        [ "$RC" = 1 ] && grep -q "cannot start jobs: " "$WORK/err" &&
                grep -q "the $1 controller is not available for jobs on this host" "$WORK/err"
}
if [ -n "$L_JOBS" ]; then
        for c in pids memory cpu; do
                case $c in
                pids) req=(--pids 10) ;;
                memory) req=(--memory 64M) ;;
                cpu) req=(--cpu 0.5) ;;
                esac
                taken=no
                if have $c; then
                        inside sh -c "echo -$c >'$L_JOBS/cgroup.subtree_control'" && taken=yes
                fi
                n_before=$(inside find "$L_JOBS" -maxdepth 1 -name 'job-*' | wc -l)
                jw start "${req[@]}" -- true
                check "limits/errors: --${req[0]#--} without the $c controller (taken away at run time: $taken): refused naming it (rc $RC: $(err1))" \
                        refused_for $c
                check "limits/errors: ... and no job cgroup was left behind" \
                        test "$(inside find "$L_JOBS" -maxdepth 1 -name 'job-*' | wc -l)" = "$n_before"
                [ $taken = yes ] && inside sh -c "echo +$c >'$L_JOBS/cgroup.subtree_control'"
        done
        check "limits/errors: the controllers are back ('$(inside cat "$L_JOBS/cgroup.subtree_control")')" \
                test "$(inside cat "$L_JOBS/cgroup.subtree_control")" = "$L_CTL"
fi

# Not delegated by systemd when the daemon starts, and no cgroups at all:
# drop-ins, a restart each. Delegate= belongs to jobworker-jobs.service
# (the jobs' unit), which a restart of the daemon leaves alone: the daemon
# is stopped (its ExecStopPost= stops the jobs' unit) and started again, so
# that systemd sets the jobs' unit up anew. (Only where the controllers are there to begin
# with; in the container the missing ones were checked above.)
restart_daemon() {
        local t=$SECONDS
        inside systemctl daemon-reload
        inside systemctl stop jobworker.service 2>/dev/null # (its warning: the socket can still start it)
        wait_for 30 is_state jobworker-jobs.service inactive ||
                lsay "jobworker-jobs.service still $(unit_state jobworker-jobs.service) 30 s after the stop"
        inside systemctl start jobworker.service
        serving() { jw list; [ "$RC" = 0 ]; }
        wait_for 30 serving && return 0
        lsay "the daemon does not serve $((SECONDS - t)) s after the restart (jwctl: $(err1)); the system says:"
        ldiag
        return 1
}
# restarted_with UNIT DROP-IN-TEXT: the daemon restarted with this drop-in
# for UNIT (none for either unit when empty) serves; a failure is one failed
# check, not a cascade.
restarted_with() {
        local u
        if [ -n "$2" ]; then
                inside mkdir -p "/etc/systemd/system/$1.d"
                printf '%b' "$2" | put "/etc/systemd/system/$1.d/50-limits-test.conf"
        else
                for u in jobworker.service jobworker-jobs.service; do
                        inside rm -f "/etc/systemd/system/$u.d/50-limits-test.conf"
                        inside rmdir "/etc/systemd/system/$u.d" 2>/dev/null
                done
        fi
        restart_daemon && return 0
        fail "limits/errors: the daemon serves after a restart with drop-in '${2:-(none)}' for $1"
        return 1
}
if have io && have cpu; then
        if restarted_with jobworker-jobs.service '[Service]\nDelegate=\nDelegate=cpu memory pids\n'; then
                ctl=$(inside cat "$L_JOBS/cgroup.subtree_control")
                if [[ " $ctl " == *" io "* ]]; then
                        lskip "errors: with Delegate=cpu memory pids systemd still gives the service io ('$ctl')"
                else
                        jw start --io-read-bps /=4M -- true
                        check "limits/errors: io not delegated (Delegate=cpu memory pids): --io-read-bps refused, 'the io controller is not available for jobs on this host' (rc $RC: $(err1))" \
                                eval '[ "$RC" = 1 ] && grep -q "cannot start jobs: the io controller is not available for jobs on this host" "$WORK/err"'
                        jw run --cpu 0.5 -- true
                        expect_rc 0 "limits/errors: ... a delegated controller's limit (--cpu 0.5) still works"
                fi
        fi
        if restarted_with jobworker.service '[Service]\nExecStart=\nExecStart=/usr/sbin/jobworkerd --config /etc/jobworker/jobworkerd.conf --cgroup off\n'; then
                jw start --cpu 0.5 -- true
                check "limits/errors: --cgroup off: --cpu refused, 'resource limits need cgroup v2, and no cgroup is set up for jobs on this host' (rc $RC: $(err1))" \
                        eval '[ "$RC" = 1 ] && grep -q "cannot start jobs: resource limits need cgroup v2, and no cgroup is set up for jobs on this host" "$WORK/err"'
                jw start -- true
                id=$(out)
                wait_end "$id" 30
                check "limits/errors: --cgroup off: a job without limits runs, without a cgroup (got $(jst "$id" 'o["state"], o["exit_code"], o["has_cgroup"]'))" \
                        test "$(jst "$id" 'o["state"], o["exit_code"], o["has_cgroup"]')" = "exited 0 False"
        fi
        if restarted_with jobworker.service ''; then
                jw run --cpu 0.5 --memory 64M --pids 16 -- true
                expect_rc 0 "limits/errors: drop-in removed, daemon restarted: limits work again"
                check "limits/errors: ... and the jobs cgroup has its controllers again" \
                        test "$(inside cat "$L_JOBS/cgroup.subtree_control")" = "$L_CTL"
        fi
else
        lskip "errors: no cpu and io controllers here: the not-delegated and --cgroup off cases need them"
fi
echo "$TEST_POLICY" | put /etc/jobworker/policy.conf
inside systemctl reload jobworker.service

# --- 7. isolation -------------------------------------------------------------------
inside touch /tmp/jw-limits-marker
jw run --isolate pid,net,tmp -- sh -c 'echo "pid=$$"; echo "net=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" " ")"; echo "tmp=$(ls -A /tmp | wc -l)"'
if [ "$RC" = 1 ] && grep -q 'refused by this host' "$WORK/err"; then
        lskip "isolation: refused here: $(err1)"
else
        check "limits/isolation: --isolate pid,net,tmp: PID 1, only loopback, an empty private /tmp (rc $RC, got $(out | tr '\n' ' '))" \
                test "$(out | tr '\n' ' ')" = "pid=1 net=lo  tmp=0 "
fi
inside rm -f /tmp/jw-limits-marker

# --- 8. the service's TasksMax: a Start with no room is RESOURCE_EXHAUSTED ------------
if have pids; then
        inside systemctl set-property --runtime jobworker-jobs.service TasksMax=24
        L_FULL=
        for _ in $(seq 40); do
                jw start -- sleep 300
                [ "$RC" = 0 ] || { L_FULL=yes; break; }
        done
        check "limits/tasks: with TasksMax=24 a Start fails 'out of resources', exit 1 ($RC: $(err1))" \
                eval '[ -n "$L_FULL" ] && [ "$RC" = 1 ] && grep -q "out of resources" "$WORK/err"'
        check "limits/tasks: the daemon logs a warning for it" \
                eval 'inside journalctl -q -u jobworker.service -p warning -o cat | grep -q "cannot start a job for tester"'
        inside systemctl set-property --runtime jobworker-jobs.service TasksMax=90%
        jw list --running --json
        for id in $(python3 -c "import json; print(' '.join(j['job_id'] for j in json.load(open('$WORK/out'))))" 2>/dev/null); do
                jw stop "$id"
        done
        jw start -- true
        expect_rc 0 "limits/tasks: TasksMax back to 90%, jobs start again"
else
        lskip "tasks: the pids controller is not available here ('$L_CTL')"
fi

lsay "done in $((SECONDS - L_T0)) s; $L_SKIPS skipped"
if [ "$FAILS" -gt "$L_FAILS0" ]; then
        lsay "$((FAILS - L_FAILS0)) failed; the system now:"
        ldiag
fi
