#!/bin/bash
# Make an unencrypted image for the "unencrypted" policy key
# (tests/integ-policy.sh): a file that goes into a store as it is, with no
# LUKS or qcow2 encryption around it.
#
# usage: plain-sample.sh KIND OUTFILE [REFFILE]
# KIND:
#   raw            2 MiB: a text marker in the first sector (so that no
#                  probe can match it by chance), then random bytes
#   qcow2          an unencrypted qcow2 v3 of 4 MiB virtual size, sparse:
#                  the marker sector, random data at 64 KiB (64 KiB), at
#                  1 MiB (512 KiB) and in the last 4 KiB, zeros elsewhere
#                  (`qemu-img convert -f raw -O qcow2` leaves those
#                  clusters unallocated)
#   qcow2-backing  an unencrypted qcow2 whose backing file is /etc/passwd
#   vmdk-flat      a monolithicFlat VMDK text descriptor whose extent is
#                  /etc/passwd (payload.sh vmdk-flat)
# REFFILE, for raw and qcow2: what a view of OUTFILE must read as; the
# file's own bytes for raw, `qemu-img convert -f qcow2 -O raw` for qcow2
# (checked to equal the raw file the qcow2 was made from).
set -u
. "$(dirname "$0")/common.sh"

[ $# -ge 2 ] && [ $# -le 3 ] || gen_die "usage: plain-sample.sh KIND OUTFILE [REFFILE]"
kind=$1 out=$2 ref=${3:-}
gen_tmpdir
t="$GEN_TMP/s"

# random_at FILE OFFSET LEN: LEN random bytes at OFFSET, in place.
random_at() {
    head -c "$3" /dev/urandom | dd of="$1" bs=4096 seek="$2" oflag=seek_bytes conv=notrunc status=none ||
        gen_die "cannot write random bytes into $1"
}

case $kind in
raw)
    gen_plaintext "$t" $((2 * 1048576)) "unencrypted raw sample"
    [ -z "$ref" ] || cp "$t" "$ref" || gen_die "cannot write $ref"
    ;;
qcow2)
    gen_need qemu-img
    src="$GEN_TMP/src"
    gen_plaintext "$src" 512 "unencrypted qcow2 sample"
    truncate -s 4M "$src" || gen_die "truncate failed"
    random_at "$src" 65536 65536
    random_at "$src" 1048576 524288
    random_at "$src" $((4 * 1048576 - 4096)) 4096
    qemu-img convert -q -f raw -O qcow2 "$src" "$t" || gen_die "qemu-img convert -O qcow2 failed"
    info=$(qemu-img info -U --output=json "$t") || gen_die "qemu-img info failed"
    $PYTHON -c '
import json, sys
i = json.loads(sys.argv[1])
ok = i["format"] == "qcow2" and not i.get("encrypted") and "backing-filename" not in i
sys.exit(0 if ok else 1)' "$info" || gen_die "not a plain qcow2 without backing file: $info"
    qemu-img convert -q -U -f qcow2 -O raw "$t" "$GEN_TMP/ref" || gen_die "qemu-img convert -O raw failed"
    cmp -s "$GEN_TMP/ref" "$src" || gen_die "the qcow2 does not read back as its source"
    [ -z "$ref" ] || cp "$GEN_TMP/ref" "$ref" || gen_die "cannot write $ref"
    ;;
qcow2-backing|vmdk-flat)
    [ -z "$ref" ] || gen_die "$kind has no reference content (it is never served)"
    "$GEN_DIR/payload.sh" "$kind" "$t" || gen_die "payload.sh $kind failed"
    ;;
*)
    gen_die "unknown kind $kind" ;;
esac
cp "$t" "$out" || gen_die "cannot write $out"
