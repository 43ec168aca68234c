# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# Functions to boot and drive the test VM (source this file from bash).
#
#   vm_start IMAGE_DIR WORK_DIR [GUEST_PORT...]
#       Boots IMAGE_DIR (from tests/vm/make-image) on a fresh qcow2 overlay in
#       WORK_DIR with QEMU's direct kernel boot, TCG (this host's /dev/kvm
#       cannot run a stock kernel), user networking restricted to the host,
#       ssh and each GUEST_PORT forwarded from 127.0.0.1. Waits (bounded) until
#       ssh answers. Sets VM_PID, VM_SSH_PORT, VM_BOOT_SECONDS and
#       VM_PORT[GUEST_PORT]=HOST_PORT. Returns non-zero when it does not boot.
#       A second, empty virtio disk (sparse, JW_VM_SCRATCH_MB MiB, serial
#       jw-scratch: /dev/disk/by-id/virtio-jw-scratch in the guest; PCI slot
#       0x10, so that it comes after the root disk, /dev/vda) is there
#       for tests that need a real block device (io.max); 0 leaves it out.
#   vm_ssh COMMAND...         runs a shell command line as root in the guest
#   vm_copy_in FILE GUEST_PATH
#   vm_copy_out GUEST_PATH FILE
#   vm_stop                   powers the guest off (bounded), kills QEMU if needed
#
# Tunables: JW_VM_MEMORY (MiB, 2048), JW_VM_CPUS (2), JW_VM_BOOT_TIMEOUT (s, 180),
# JW_VM_SCRATCH_MB (MiB, 256).

VM_PID=
VM_SSH_PORT=
VM_BOOT_SECONDS=
VM_DIR=
VM_IMAGE=
declare -A VM_PORT=()

vm__free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One ssh connection is shared by all commands: vm_start starts a master
# connection (a new key exchange per command costs about a second of emulated
# CPU); without it, ssh connects directly.
vm__ssh_opts() {
        echo -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
                -o LogLevel=ERROR -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=6 \
                -o "ControlMaster=${1:-no}" -o "ControlPath=$VM_DIR/ssh-ctl" \
                -i "$VM_IMAGE/id_ed25519"
}

vm_ssh() {
        # shellcheck disable=SC2046
        ssh $(vm__ssh_opts) -p "$VM_SSH_PORT" root@127.0.0.1 "$@"
}

vm_copy_in() {
        # shellcheck disable=SC2046
        scp -q $(vm__ssh_opts) -P "$VM_SSH_PORT" "$1" "root@127.0.0.1:$2"
}

vm_copy_out() {
        # shellcheck disable=SC2046
        scp -q $(vm__ssh_opts) -P "$VM_SSH_PORT" "root@127.0.0.1:$1" "$2"
}

vm_start() {
        local image=$1 work=$2 p fwd t0 scratch=()
        shift 2
        VM_IMAGE=$image VM_DIR=$work
        command -v qemu-system-x86_64 >/dev/null || { echo "vm: qemu-system-x86_64 is not installed" >&2; return 1; }
        qemu-img create -q -f qcow2 -F qcow2 -b "$image/disk.qcow2" "$work/overlay.qcow2" || return 1
        if [ "${JW_VM_SCRATCH_MB:-256}" -gt 0 ]; then
                rm -f "$work/scratch.raw"
                truncate -s "${JW_VM_SCRATCH_MB:-256}M" "$work/scratch.raw" || return 1
                scratch=(-drive "file=$work/scratch.raw,if=none,id=scratch,format=raw,cache=unsafe"
                         -device virtio-blk-pci,drive=scratch,serial=jw-scratch,addr=0x10)
        fi
        VM_SSH_PORT=$(vm__free_port)
        fwd="hostfwd=tcp:127.0.0.1:$VM_SSH_PORT-:22"
        for p in "$@"; do
                VM_PORT[$p]=$(vm__free_port)
                fwd="$fwd,hostfwd=tcp:127.0.0.1:${VM_PORT[$p]}-:$p"
        done
        t0=$(date +%s.%N)
        qemu-system-x86_64 \
                -accel tcg,thread=multi -cpu max \
                -m "${JW_VM_MEMORY:-2048}" -smp "${JW_VM_CPUS:-2}" \
                -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
                -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 quiet" \
                -drive "file=$work/overlay.qcow2,if=virtio,format=qcow2,cache=unsafe" \
                "${scratch[@]}" \
                -netdev "user,id=n0,restrict=on,$fwd" -device virtio-net-pci,netdev=n0 \
                -device virtio-rng-pci \
                -display none -monitor none -serial "file:$work/console.log" \
                -pidfile "$work/qemu.pid" \
                </dev/null >"$work/qemu.log" 2>&1 &
        VM_PID=$!
        local deadline=$((SECONDS + ${JW_VM_BOOT_TIMEOUT:-180}))
        while [ $SECONDS -lt $deadline ]; do
                kill -0 "$VM_PID" 2>/dev/null || { echo "vm: QEMU exited:" >&2; cat "$work/qemu.log" >&2; VM_PID=; return 1; }
                if vm_ssh true 2>/dev/null; then
                        VM_BOOT_SECONDS=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")
                        # shellcheck disable=SC2046
                        ssh $(vm__ssh_opts yes) -o ControlPersist=yes -f -N \
                                -p "$VM_SSH_PORT" root@127.0.0.1 </dev/null >/dev/null 2>&1 || true
                        return 0
                fi
                sleep 1
        done
        echo "vm: no ssh after ${JW_VM_BOOT_TIMEOUT:-180} s; console:" >&2
        tail -n 30 "$work/console.log" >&2
        return 1
}

vm_stop() {
        [ -n "$VM_PID" ] || return 0
        if kill -0 "$VM_PID" 2>/dev/null; then
                timeout 10 bash -c "$(declare -f vm_ssh vm__ssh_opts); VM_IMAGE='$VM_IMAGE' VM_SSH_PORT='$VM_SSH_PORT' VM_DIR='$VM_DIR'; vm_ssh 'systemctl poweroff --no-block'" \
                        >/dev/null 2>&1 || true
                # shellcheck disable=SC2046
                timeout 5 ssh $(vm__ssh_opts) -p "$VM_SSH_PORT" -O exit root@127.0.0.1 >/dev/null 2>&1 || true
                local _
                for _ in $(seq 60); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.5; done
                kill -KILL "$VM_PID" 2>/dev/null
        fi
        wait "$VM_PID" 2>/dev/null
        VM_PID=
}
