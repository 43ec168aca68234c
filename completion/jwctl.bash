# bash completion for jwctl(1)                          -*- shell-script -*-
# SPDX-License-Identifier: MIT
#
# Completes commands, options, and option values that are files; for JOB it
# asks the server (jwctl list --json: ids and names) when a server is
# configured, quietly and with a short timeout.

_jwctl_job_ids()
{
    local -a global=()
    local i w
    # Reuse the global options already on the line.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            --server|--cert|--key|--ca)
                global+=("$w" "${COMP_WORDS[i+1]}")
                ;;
            --server=*|--cert=*|--key=*|--ca=*)
                global+=("$w")
                ;;
        esac
    done
    # ids, and the names of named jobs (a JOB may be either)
    jwctl "${global[@]}" --timeout 2 list --json 2>/dev/null |
        sed -n -e h -e 's/^.*"job_id":"\([0-9a-f-]*\)".*$/\1/p' -e g -e 's/^.*"name":"\([A-Za-z0-9._-]*\)".*$/\1/p' |
        sort -u
}

# Host names and @groups of the config file (for --hosts).
_jwctl_hosts()
{
    local cfg=${XDG_CONFIG_HOME:-$HOME/.config}/jwctl/config
    [[ -r $cfg ]] || return
    sed -n -e 's/^[[:space:]]*host[[:space:]]\{1,\}\([^[:space:]=]*\)[[:space:]]*=.*$/\1/p' \
        -e 's/^[[:space:]]*group[[:space:]]\{1,\}\([^[:space:]=]*\)[[:space:]]*=.*$/@\1/p' "$cfg"
}

# Saved runs (jwctl run|start --save NAME), as @NAME.
_jwctl_runs()
{
    local dir=${XDG_STATE_HOME:-$HOME/.local/state}/jwctl/runs f
    [[ -d $dir ]] || return
    for f in "$dir"/*; do
        [[ -f $f && $f != *.tmp.* ]] && echo "@${f##*/}"
    done
}

_jwctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n = || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="start run status list logs stop wait kill help"
    local global_opts="--server --cert --key --ca --timeout --reconnect-timeout --keepalive --help --version"
    local cmd="" i w dashdash=0 cmd_at=0

    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            --server|--cert|--key|--ca|--timeout|--reconnect-timeout|--keepalive|--env|--cwd|--offset|--grace|\
            --cpu|--memory|--pids|--io-read-bps|--io-write-bps|--isolate|--max-runtime|--signal|\
            --name|--label|--state|--owner|--hosts|--hosts-file|--parallel|--save)
                ((i++)); continue ;;
            -s)
                [[ $cmd == kill ]] && ((i++)); continue ;;
        esac
        if [[ -z $cmd && $w != -* ]]; then
            cmd=$w; cmd_at=$i; continue
        fi
        if [[ -n $cmd && $w == -- ]]; then
            dashdash=1
        fi
        # start/run: the first word after the command that is not an
        # option starts the remote command.
        if [[ ($cmd == start || $cmd == run) && $i -gt $cmd_at && $w != -* ]]; then
            dashdash=1
        fi
    done

    case $prev in
        --cert|--key|--ca|--hosts-file)
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
        --hosts)
            # a comma-separated list: complete the word after the last comma
            local hdone=""
            [[ $cur == *,* ]] && hdone=${cur%,*},
            COMPREPLY=($(compgen -P "$hdone" -W "$(_jwctl_hosts)" -- "${cur##*,}")); return ;;
        --cwd)
            COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
        --io-read-bps|--io-write-bps)
            # DEV=RATE: DEV is a block device or a path on one (on the server)
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames -o nospace 2>/dev/null; return ;;
        --isolate)
            # a comma-separated list: complete the word after the last comma
            # (without the values already given; "all" only alone)
            local done_part="" left="" v
            [[ $cur == *,* ]] && done_part=${cur%,*},
            for v in pid net tmp all; do
                [[ ,$done_part == *,$v,* || ($v == all && -n $done_part) ]] || left+=" $v"
            done
            COMPREPLY=($(compgen -P "$done_part" -W "$left" -- "${cur##*,}")); return ;;
        --state)
            # a comma-separated list, as --isolate
            local done_part="" left="" v
            [[ $cur == *,* ]] && done_part=${cur%,*},
            for v in running exited killed lost ended finished; do
                [[ ,$done_part == *,$v,* ]] || left+=" $v"
            done
            COMPREPLY=($(compgen -P "$done_part" -W "$left" -- "${cur##*,}")); return ;;
        --server|--timeout|--reconnect-timeout|--keepalive|--env|--offset|--grace|--cpu|--memory|--pids|\
        --name|--label|--owner|--parallel|--save)
            return ;;
        -s|--signal)
            if [[ $cmd == kill || $prev == --signal ]]; then
                # the usual names; numbers and RTMIN+n are taken too
                COMPREPLY=($(compgen -W "HUP INT QUIT ABRT KILL USR1 USR2 PIPE ALRM TERM CHLD CONT STOP TSTP TTIN TTOU WINCH RTMIN RTMAX" \
                                     -- "${cur^^}"))
                return
            fi ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    if ((dashdash)) && [[ $cmd == start || $cmd == run ]]; then
        # The remote command: complete program names, then files.
        if [[ ${words[cword-1]} == -- || $prev == "$cmd" ]]; then
            COMPREPLY=($(compgen -c -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null
        fi
        return
    fi

    local opts=""
    # Fan-out over several hosts (jwctl(1) FAN-OUT), every command.
    local fanout_opts="--hosts --hosts-file --parallel --no-prefix --group-output --fail-fast"
    case $cmd in
        start)     opts="--env --cwd --cpu --memory --pids --io-read-bps --io-write-bps --isolate --max-runtime --name --label --save --" ;;
        run)       opts="-n --no-stdin -t --tty --env --cwd --cpu --memory --pids --io-read-bps --io-write-bps --isolate --max-runtime --name --label --save --json --" ;;
        status)    opts="--json" ;;
        list)      opts="--json --running --state --owner --name --label" ;;
        logs)      opts="-f --follow --stdout --stderr --offset --json" ;;
        stop)      opts="--grace" ;;
        wait)      opts="" ;;
        kill)      opts="-s --signal --all -l --list" ;;
        help)      COMPREPLY=($(compgen -W "${commands% help}" -- "$cur")); return ;;
        *)         return ;;
    esac

    [[ $cmd != help ]] && opts+=" $fanout_opts"
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
        return
    fi
    case $cmd in
        status|logs|stop|wait|kill)
            if [[ $cur == @* ]]; then
                COMPREPLY=($(compgen -W "$(_jwctl_runs)" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_jwctl_job_ids)" -- "$cur"))
            fi ;;
    esac
} &&
complete -F _jwctl jwctl
