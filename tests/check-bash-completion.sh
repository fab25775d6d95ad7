#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tools/bash-completion/virt-coco, sourced in bash, completes commands,
# each command's options (read from the built binary's --help), option
# arguments and domain names (from a fake virsh on PATH).
# Usage: check-bash-completion.sh COMPLETION-FILE VIRT-COCO   (TAP)
set -u
comp=$1
prog=$2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/virsh" <<'SH'
#!/bin/sh
# the fake virsh: records its arguments, lists two domains
echo "$*" >>"${0%/*}/virsh.args"
printf 'guest1\nguest2\nother\n'
SH
chmod +x "$tmp/virsh"
PATH=$tmp:$PATH

# shellcheck source=/dev/null
source "$comp" || { echo "1..0 # cannot source $comp"; exit 1; }

n=0
fails=0
# expect "WANT" WORD... : complete the last word; WANT is the sorted reply
expect() {
    local want=$1
    shift
    COMP_WORDS=("$prog" "$@")
    COMP_CWORD=$#
    COMPREPLY=()
    _virt_coco
    local got
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
    got=${got% }
    n=$((n + 1))
    if [ "$got" = "$want" ]; then
        echo "ok $n - virt-coco $* -> $want"
    else
        echo "not ok $n - virt-coco $*: want '$want', got '$got'"
        fails=$((fails + 1))
    fi
}

echo "1..22"
expect "capabilities help list metadata migrate recover status timeline validate vfio" ""
expect "metadata migrate" m
expect "--connect" --con
expect "metadata migrate" -c test:///default m
expect "--p2p --parallel --parallel-connections --persistent --persistent-xml --postcopy --postcopy-after-precopy --postcopy-bandwidth --postcopy-resume" migrate --p
expect "--config" metadata --remove --live --c
expect "--config --domain --json" validate --
expect "emulated kvm" capabilities --backend ""
expect "check" vfio ""
expect "guest1 guest2" migrate --confidential --live gu
expect "" migrate --confidential guest1 q
expect "guest1 guest2 other" -c qemu:///system metadata ""
# the URI of -c reaches virsh
n=$((n + 1))
if grep -q -x -e "-c qemu:///system -q list --all --name" "$tmp/virsh.args"; then
    echo "ok $n - virsh is asked on the -c connection"
else
    echo "not ok $n - virsh arguments: $(tr '\n' '|' <"$tmp/virsh.args")"
    fails=$((fails + 1))
fi
expect "validate vfio" help v
expect "list" l
expect "status" st
expect "--svg" timeline --s
expect "guest1 guest2" status gu
expect "recover" rec
expect "--agent-socket" recover --a
# --option=VALUE, split by bash at '='
expect "emulated kvm" capabilities --backend =
expect "guest1 guest2" migrate --dname = new --xml = f.xml gu
[ "$fails" = 0 ]
