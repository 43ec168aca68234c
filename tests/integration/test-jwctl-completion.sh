#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completion of jwctl (completion/jwctl.bash): commands, options per
# command, files for --cert, and the remote command after "--".
set -u
SRC=${JW_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# No server here: job id completion must stay quiet and give nothing.
export JWCTL_SERVER=127.0.0.1:1 XDG_CONFIG_HOME=/nonexistent
source "$SRC/completion/jwctl.bash" || { echo "cannot source the completion"; exit 1; }
FAILS=0
# complete 'WORDS...' -> COMPREPLY for the last word
complete_line() {
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        _jwctl jwctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
check() { # check 'expected' WORDS...
        local exp=$1; shift
        local got; got=$(complete_line "$@")
        if [[ $got != "$exp" ]]; then echo "FAIL: jwctl ${*:2}: got '$got', expected '$exp'"; FAILS=$((FAILS + 1)); fi
}
check "list logs" jwctl l
check "start status stop" jwctl st
check "help kill list logs run start status stop wait" jwctl --server x:1 ''
check "kill" jwctl k
check "--all" jwctl kill --a
check "USR1 USR2" jwctl kill -s US
check "USR1 USR2" jwctl kill --signal us
check "" jwctl kill -s USR1 ''
check "--server --stderr --stdout" jwctl logs --s
check "--ca --cert --fail-fast --group-output --help --hosts --hosts-file --json --keepalive --key --label --name --no-prefix --owner --parallel --reconnect-timeout --running --server --state --timeout --version" jwctl list --
check "--label" jwctl start --l
check "--name --no-prefix --no-stdin" jwctl run --n
check "--name --no-prefix" jwctl start --n
check "running" jwctl list --state r
check "running,ended running,exited running,finished running,killed running,lost" jwctl list --state running,
check "" jwctl start --name ''
check "" jwctl list --label ''
check "--json" jwctl list --name web --j
check "--grace --group-output" jwctl stop --g
check "--env" jwctl run --e
check "--ca --cert --cpu --cwd" jwctl start --c
check "--io-read-bps --io-write-bps --isolate" jwctl run --i
check "net" jwctl start --isolate n
check "pid,net pid,tmp" jwctl start --isolate pid,
check "" jwctl start --cpu ''
check "" jwctl --timeout ''
check "" jwctl --reconnect-timeout ''
check "" jwctl --keepalive ''
TMPD=$(mktemp -d); trap 'rm -rf "$TMPD"' EXIT
touch "$TMPD/alice.pem" "$TMPD/alice-key.pem"
check "$TMPD/alice-key.pem $TMPD/alice.pem" jwctl --cert "$TMPD/al"
check "$TMPD/alice-key.pem" jwctl start -- cat "$TMPD/alice-"
check "sha256sum" jwctl run -- sha256su
check "" jwctl status ''
# Fan-out: hosts and @groups from the config file, saved runs as @NAME.
mkdir -p "$TMPD/cfg/jwctl" "$TMPD/state/jwctl/runs"
printf 'host web01 = a:1\nhost web01 tls-name = x\nhost web02 = b:1\ngroup web = web01 web02\n' >"$TMPD/cfg/jwctl/config"
touch "$TMPD/state/jwctl/runs/deploy" "$TMPD/state/jwctl/runs/deploy.tmp.12"
XDG_CONFIG_HOME=$TMPD/cfg check "@web web01 web02" jwctl run --hosts ''
XDG_CONFIG_HOME=$TMPD/cfg check "web01,web01 web01,web02" jwctl run --hosts web01,w
XDG_STATE_HOME=$TMPD/state check "@deploy" jwctl status @
check "--save --server" jwctl run --s
check "--hosts --hosts-file" jwctl wait --hosts
[[ $FAILS == 0 ]] && echo "completion: all checks passed"
[[ $FAILS == 0 ]]
