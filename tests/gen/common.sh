# shellcheck shell=bash
# Shared helpers for the image generators in tests/gen/ (sourced, bash).
#
# Generator convention: GEN [options] OUTDIR NAME KEYFILE [PLAINDIR]
#   OUTDIR/NAME          the image (what goes into a store)
#   PLAINDIR/NAME.plain  the exact plaintext a correct view must show
#                        (PLAINDIR defaults to OUTDIR; keep it outside the store)
#   KEYFILE              the passphrase; one trailing newline is not part of it
#                        (the safeimgfs key file rule), so the same file can be
#                        given to safeimgfs as NAME.key.
# Generators print nothing on success and exit non-zero (with a message) on error.

GEN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=/usr/bin/python3

gen_die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

gen_need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || gen_die "missing tool: $t"
    done
}

# gen_tmpdir: make $GEN_TMP (removed on exit).
gen_tmpdir() {
    GEN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/safeimg-gen.XXXXXX") || gen_die "mktemp failed"
    trap 'rm -rf "$GEN_TMP"' EXIT
}

# gen_passfile KEYFILE: print the path of a file holding the exact passphrase
# (KEYFILE minus one trailing newline). Needs $GEN_TMP.
gen_passfile() {
    local out="$GEN_TMP/pass"
    $PYTHON - "$1" "$out" <<'EOF' || gen_die "cannot read key file $1"
import sys
b = open(sys.argv[1], "rb").read()
if b.endswith(b"\n"):
    b = b[:-1]
open(sys.argv[2], "wb").write(b)
EOF
    chmod 600 "$out"
    echo "$out"
}

# gen_plaintext FILE BYTES TAG: random content whose first 512 bytes are a
# text marker padded with zeros, so that no format probe can match it by
# chance (e.g. 55 AA at 510 would look like an MBR) and no filesystem
# signature makes `cryptsetup reencrypt` refuse it.
gen_plaintext() {
    local file=$1 bytes=$2 tag=$3
    head -c "$bytes" /dev/urandom >"$file" || gen_die "cannot write $file"
    [ "$(stat -c %s "$file")" -eq "$bytes" ] || gen_die "short plaintext $file"
    $PYTHON - "$file" "$tag" <<'EOF' || gen_die "cannot mark $file"
import sys
m = ("safeimgfs test plaintext: %s\n" % sys.argv[2]).encode()[:500]
with open(sys.argv[1], "r+b") as f:
    f.write(m + b"\0" * (512 - len(m)))
EOF
}

# gen_qemu_retry CMD...: run a qemu-img command that creates LUKS material,
# retrying on the spurious "Unable to get accurate CPU usage" failure.
gen_qemu_retry() {
    local err="$GEN_TMP/qemu.err"
    for _ in $(seq 1 30); do
        if "$@" 2>"$err"; then
            return 0
        fi
        grep -q "accurate CPU usage" "$err" || { cat "$err" >&2; return 1; }
    done
    cat "$err" >&2
    return 1
}

# gen_install SRC DEST: move SRC to DEST atomically (via DEST's directory
# and a hidden .part name, which a store never serves).
gen_install() {
    local tmp
    tmp="$(dirname "$2")/.$(basename "$2").part"
    cp "$1" "$tmp" && mv -f "$tmp" "$2" && rm -f "$1" || { rm -f "$tmp"; gen_die "cannot write $2"; }
}

# gen_qemu_check_luks1 IMAGE PASSFILE PLAIN: decrypt a raw LUKS1 image with
# qemu's own LUKS driver and compare with PLAIN (a third implementation).
# Skipped when the passphrase is not NUL-free UTF-8 (qemu secrets must be).
gen_qemu_check_luks1() {
    command -v qemu-img >/dev/null 2>&1 || return 0
    $PYTHON -c 'import sys; b = open(sys.argv[1], "rb").read(); b.decode("utf-8"); sys.exit(b"\0" in b)' \
        "$2" 2>/dev/null || return 0
    rm -f "$GEN_TMP/qemu.raw"
    qemu-img convert -U --object "secret,id=s,file=$2,format=raw" --image-opts \
        "driver=luks,file.filename=$1,key-secret=s" -O raw "$GEN_TMP/qemu.raw" ||
        gen_die "qemu-img cannot decrypt $1"
    cmp -s "$GEN_TMP/qemu.raw" "$3" || gen_die "qemu-img's plaintext of $1 differs from the expected one"
    rm -f "$GEN_TMP/qemu.raw"
}

# gen_args_tail "$@": parse OUTDIR NAME KEYFILE [PLAINDIR] into
# GEN_OUT GEN_NAME GEN_KEY GEN_PLAINDIR.
gen_args_tail() {
    [ $# -ge 3 ] && [ $# -le 4 ] || gen_die "usage: ${0##*/} [options] OUTDIR NAME KEYFILE [PLAINDIR]"
    GEN_OUT=$1 GEN_NAME=$2 GEN_KEY=$3 GEN_PLAINDIR=${4:-$1}
    [ -d "$GEN_OUT" ] || gen_die "no such directory: $GEN_OUT"
    [ -d "$GEN_PLAINDIR" ] || gen_die "no such directory: $GEN_PLAINDIR"
    [ -r "$GEN_KEY" ] || gen_die "cannot read key file: $GEN_KEY"
    case $GEN_NAME in */*|"") gen_die "bad image name: $GEN_NAME" ;; esac
}
