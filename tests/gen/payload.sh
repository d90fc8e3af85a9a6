#!/bin/bash
# Make a small disk-image file of a given format with the real tools, to be used
# as the (malicious or merely non-raw) payload of a LUKS image.
#
# usage: payload.sh KIND OUTFILE
# KIND:
#   qcow2           plain qcow2 v3, 1 MiB virtual size
#   qcow2-backing   qcow2 whose backing file is /etc/passwd (raw)
#   qcow2-datafile  qcow2 with an external data file (absolute scratch path)
#   vmdk            monolithicSparse VMDK
#   vmdk-flat       monolithicFlat VMDK text descriptor whose extent is /etc/passwd
#                   (CVE-2022-47951 style)
#   vdi vpc vhdx qed  the respective qemu formats
#   luks1           a nested qemu LUKS1 image (passphrase "inner")
#   iso             an ISO 9660 image (genisoimage)
#   raw             1 MiB of zeros with a text line (control sample)
# Only OUTFILE is written (for vmdk-flat: the descriptor only, not the extent).
set -u
. "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || gen_die "usage: payload.sh KIND OUTFILE"
kind=$1 out=$2
gen_tmpdir
t="$GEN_TMP/p"

case $kind in
qcow2)
    qemu-img create -q -f qcow2 "$t" 1M ;;
qcow2-backing)
    qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw "$t" 1M ;;
qcow2-datafile)
    # Incompatible bit 2 plus a data-file name extension (an absolute scratch
    # path: never let qemu-img create write to a real host file).
    qemu-img create -q -f qcow2 -o "data_file=$GEN_TMP/data,data_file_raw=on" "$t" 1M ;;
vmdk)
    qemu-img create -q -f vmdk "$t" 1M ;;
vmdk-flat)
    qemu-img create -q -f vmdk -o subformat=monolithicFlat "$GEN_TMP/d.vmdk" 1M &&
        sed 's|"d-flat.vmdk"|"/etc/passwd"|' "$GEN_TMP/d.vmdk" >"$t" &&
        grep -q '^RW [0-9]* FLAT "/etc/passwd" 0$' "$t" ;;
vdi|vpc|vhdx|qed)
    qemu-img create -q -f "$kind" "$t" 1M ;;
luks1)
    printf inner >"$GEN_TMP/inner.pw"
    gen_qemu_retry qemu-img create -q -f luks --object "secret,id=s,file=$GEN_TMP/inner.pw" \
        -o key-secret=s,iter-time=10 "$t" 1M ;;
iso)
    mkdir "$GEN_TMP/iso" && echo hello >"$GEN_TMP/iso/hello.txt" &&
        genisoimage -quiet -o "$t" "$GEN_TMP/iso" ;;
raw)
    head -c 1M /dev/zero >"$t" && echo "just some raw bytes" | dd of="$t" conv=notrunc status=none ;;
*)
    gen_die "unknown kind $kind" ;;
esac
[ $? -eq 0 ] && [ -s "$t" ] || gen_die "cannot make a $kind payload"
cp "$t" "$out" || gen_die "cannot write $out"
