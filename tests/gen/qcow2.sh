# shellcheck shell=bash
# Generators for qcow2+LUKS test images (bash functions; sourced by the
# tests/integ-qcow2-*.sh tests after lib.sh, never run).
#
# Every image is made by qemu-img / qemu-io themselves; what no tool makes is
# patched afterwards with qcow2patch.py, and allocation maps come from
# qcow2map.py (both next to this file). Passphrases go to qemu through a
# 0600 file (`--object secret,id=s,file=PW`), never on a command line.
# Functions print nothing on success; on error they print a message on
# stderr and return 1 (the caller decides to fail or skip).
#
#   q2_secret FILE PASS                    passphrase file (0600, exact bytes)
#   q2_create IMG SIZE PW [OPTS]           empty qcow2+LUKS image (qemu-img create)
#   q2_create_plain IMG SIZE [OPTS]        empty unencrypted qcow2
#   q2_from_raw RAW IMG PW [OPTS]          qcow2+LUKS from a raw file (qemu-img convert)
#   q2_io IMG PW QEMU-IO-CMD...            run qemu-io commands on an encrypted image
#   q2_write_random IMG PW OFF LEN [OFF LEN...]
#                                          random data (a fresh random source per
#                                          write) at guest offsets, one qemu-io run
#   q2_ref IMG PW OUT                      the reference plaintext: qemu-img convert -O raw
#   q2_snapshot IMG PW NAME                internal snapshot (qemu-img snapshot -c)
#   q2_resize IMG PW SIZE [OPTION]         qemu-img resize (OPTION: --shrink, --preallocation=...)
#   q2_map IMG [--runs|--json|...]         qcow2map.py
#   q2_patch IMG OPERATION ARGS...         qcow2patch.py
#   q2_bg NAME FUNCTION ARGS...; q2_wait   run generators concurrently; q2_wait
#                                          returns 1 (printing their logs) if any failed
# Sizes and offsets take qemu suffixes (k, M, G) where qemu parses them;
# q2_write_random wants plain byte counts or k/M/G suffixes as well.
# qemu's LUKS creation sometimes fails on VMs with "Unable to get accurate
# CPU usage" (coarse per-thread rusage): every creating call is retried.

Q2_GEN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${PYTHON:=/usr/bin/python3}"
Q2_ITER_TIME=${Q2_ITER_TIME:-10}

_q2_tmp() {
    local d="${SCRATCH:-${TMPDIR:-/tmp}}"
    mktemp -d "$d/q2gen.XXXXXX"
}

q2_secret() {
    (umask 077 && printf '%s' "$2" >"$1") && chmod 600 "$1" || {
        echo "q2_secret: cannot write $1" >&2
        return 1
    }
}

# _q2_retry CMD...: run a LUKS-creating qemu command, retrying the spurious
# "Unable to get accurate CPU usage" failure (up to 30 times).
_q2_retry() {
    local err i
    err=$(mktemp "${SCRATCH:-${TMPDIR:-/tmp}}/q2err.XXXXXX") || return 1
    for i in $(seq 1 30); do
        if "$@" 2>"$err"; then
            rm -f "$err"
            return 0
        fi
        grep -q "accurate CPU usage" "$err" || break
    done
    echo "failed: $*" >&2
    cat "$err" >&2
    rm -f "$err"
    return 1
}

q2_create() {
    local img=$1 size=$2 pw=$3 opts=${4:+,$4}
    rm -f "$img"
    _q2_retry qemu-img create -q -f qcow2 --object "secret,id=s,file=$pw,format=raw" \
        -o "encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=$Q2_ITER_TIME$opts" "$img" "$size"
}

q2_create_plain() {
    local img=$1 size=$2 opts=${3:-}
    rm -f "$img"
    qemu-img create -q -f qcow2 ${opts:+-o "$opts"} "$img" "$size" >/dev/null || {
        echo "q2_create_plain: qemu-img create $img failed" >&2
        return 1
    }
}

q2_from_raw() {
    local raw=$1 img=$2 pw=$3 opts=${4:+,$4}
    rm -f "$img"
    _q2_retry qemu-img convert -f raw -O qcow2 --object "secret,id=s,file=$pw,format=raw" \
        -o "encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=$Q2_ITER_TIME$opts" "$raw" "$img"
}

q2_io() {
    local img=$1 pw=$2 out rc=0
    shift 2
    local args=() c
    for c in "$@"; do args+=(-c "$c"); done
    out=$(qemu-io --object "secret,id=s,file=$pw,format=raw" --image-opts \
        "driver=qcow2,file.filename=$img,encrypt.format=luks,encrypt.key-secret=s" "${args[@]}" 2>&1) || rc=$?
    # qemu-io may exit 0 although a command failed: look for its error lines.
    if [ $rc -ne 0 ] || grep -qiE 'error|failed|invalid|not supported|usage' <<<"$out"; then
        echo "q2_io $img $*: $out" >&2
        return 1
    fi
}

# _q2_bytes N: N with an optional k/M/G suffix, in bytes.
_q2_bytes() {
    local n=$1
    case $n in
    *[kK]) echo $((${n%?} * 1024)) ;;
    *M) echo $((${n%?} * 1048576)) ;;
    *G) echo $((${n%?} * 1073741824)) ;;
    *) echo $((n)) ;;
    esac
}

q2_write_random() {
    local img=$1 pw=$2 tmp i=0 off len cmds=() r=0
    shift 2
    tmp=$(_q2_tmp) || return 1
    while [ $# -ge 2 ]; do
        off=$(_q2_bytes "$1") len=$(_q2_bytes "$2")
        shift 2
        head -c "$len" /dev/urandom >"$tmp/src.$i" || { rm -rf "$tmp"; return 1; }
        cmds+=("write -s $tmp/src.$i $off $len")
        i=$((i + 1))
    done
    [ $# -eq 0 ] || { echo "q2_write_random: odd number of arguments" >&2; rm -rf "$tmp"; return 1; }
    q2_io "$img" "$pw" "${cmds[@]}" || r=1
    rm -rf "$tmp"
    return $r
}

q2_ref() {
    local img=$1 pw=$2 out=$3
    rm -f "$out"
    qemu-img convert -U --object "secret,id=s,file=$pw,format=raw" --image-opts \
        "driver=qcow2,file.filename=$img,encrypt.format=luks,encrypt.key-secret=s" -O raw "$out" || {
        echo "q2_ref: qemu-img convert of $img failed" >&2
        return 1
    }
}

q2_snapshot() {
    qemu-img snapshot -c "$3" --object "secret,id=s,file=$2,format=raw" --image-opts \
        "driver=qcow2,file.filename=$1,encrypt.format=luks,encrypt.key-secret=s" || {
        echo "q2_snapshot: qemu-img snapshot -c $3 $1 failed" >&2
        return 1
    }
}

q2_resize() {
    qemu-img resize -q ${4:+"$4"} --object "secret,id=s,file=$2,format=raw" --image-opts \
        "driver=qcow2,file.filename=$1,encrypt.format=luks,encrypt.key-secret=s" "$3" || {
        echo "q2_resize: qemu-img resize $1 $3 failed" >&2
        return 1
    }
}

q2_map() {
    local img=$1
    shift
    "$PYTHON" "$Q2_GEN_DIR/qcow2map.py" "$@" "$img"
}

q2_patch() {
    "$PYTHON" "$Q2_GEN_DIR/qcow2patch.py" "$@" >/dev/null
}

_Q2_JOBS=()
q2_bg() {
    local name=$1
    shift
    local log
    log=$(mktemp "${SCRATCH:-${TMPDIR:-/tmp}}/q2job.XXXXXX") || return 1
    ("$@") >"$log" 2>&1 &
    _Q2_JOBS+=("$!|$log|$name")
}

q2_wait() {
    local rec pid log name bad=0
    for rec in "${_Q2_JOBS[@]}"; do
        IFS='|' read -r pid log name <<<"$rec"
        if ! wait "$pid"; then
            echo "generator for $name failed: $(cat "$log")" >&2
            bad=1
        fi
        rm -f "$log"
    done
    _Q2_JOBS=()
    return $bad
}
