#!/bin/bash
# Make one plaintext sample for the inspection engine tests (integ-engine.sh,
# integ-agree.sh): the content a LUKS volume or a qcow2+LUKS image will carry.
#
# usage: engine-sample.sh KIND OUTFILE
# KIND is any kind of payload.sh (qcow2, qcow2-backing, qcow2-datafile, vmdk,
# vmdk-flat, vdi, vpc, vhdx, qed, luks1, iso, raw), or:
#   vpc-fixed   a fixed VHD (qemu-img -o subformat=fixed): only a footer, in
#               the last 512 bytes
#   iso-qcow2   a genisoimage ISO whose system area (the first 32 KiB) holds
#               the start of a qcow2 with backing file /etc/passwd: qemu-img
#               takes it for a qcow2, an ISO reader for an ISO
#   gpt         4 MiB of zeros with a GPT of one partition (sgdisk -n)
#   mbr         4 MiB of zeros with an MBR of one partition (sfdisk)
#   random      1 MiB from /dev/urandom
# OUTFILE is zero-padded to a whole 512-byte sector (a fixed VHD's footer stays
# the last sector: its size already is one), so that the plaintext of a LUKS1
# volume or a qcow2 made from it is exactly OUTFILE.  Each sample is checked
# to be what its name says (magic bytes, and qemu-img info where qemu-img can
# open it without following a reference to a host file).
set -u
. "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || gen_die "usage: engine-sample.sh KIND OUTFILE"
kind=$1 out=$2
gen_tmpdir
t="$GEN_TMP/s"

# magic_at FILE OFFSET HEX: the bytes at OFFSET are HEX.
magic_at() {
    [ "$(od -An -tx1 -v -j "$2" -N $((${#3} / 2)) "$1" | tr -d ' \n')" = "$3" ]
}

qemu_format() {
    qemu-img info -U --output=json "$1" 2>/dev/null |
        $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["format"])' 2>/dev/null
}

case $kind in
qcow2|qcow2-backing|qcow2-datafile|vmdk|vmdk-flat|vdi|vpc|vhdx|qed|luks1|iso|raw)
    "$GEN_DIR/payload.sh" "$kind" "$t" || gen_die "payload.sh $kind failed"
    case $kind in
    qcow2*) magic_at "$t" 0 514649fb ;;
    vmdk) magic_at "$t" 0 4b444d56 && [ "$(qemu_format "$t")" = vmdk ] ;;
    vpc) magic_at "$t" 0 "$(printf conectix | od -An -tx1 | tr -d ' \n')" && [ "$(qemu_format "$t")" = vpc ] ;;
    vdi|vhdx|qed) [ "$(qemu_format "$t")" = "$kind" ] ;;
    luks1) magic_at "$t" 0 4c554b53babe0001 ;;
    *) true ;;
    esac || gen_die "the $kind payload is not what it should be"
    ;;
vpc-fixed)
    qemu-img create -q -f vpc -o subformat=fixed "$t" 1M || gen_die "qemu-img create -f vpc failed"
    sz=$(stat -c %s "$t")
    [ $((sz % 512)) -eq 0 ] && magic_at "$t" $((sz - 512)) "$(printf conectix | od -An -tx1 | tr -d ' \n')" &&
        ! magic_at "$t" 0 "$(printf conectix | od -An -tx1 | tr -d ' \n')" ||
        gen_die "the fixed VHD has no footer in its last sector (or a header at 0)"
    ;;
iso-qcow2)
    mkdir "$GEN_TMP/iso" && echo "engine sample" >"$GEN_TMP/iso/readme.txt" &&
        genisoimage -quiet -o "$t" "$GEN_TMP/iso" || gen_die "genisoimage failed"
    qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw "$GEN_TMP/q" 1M || gen_die "qemu-img create failed"
    # The system area is all zeros in genisoimage's output: nothing of the
    # ISO is lost.
    [ "$(head -c 32768 "$t" | tr -d '\0' | wc -c)" -eq 0 ] || gen_die "the ISO system area is not empty"
    head -c 32768 "$GEN_TMP/q" | dd of="$t" conv=notrunc status=none || gen_die "cannot write the qcow2 header"
    magic_at "$t" 32769 4344303031 && magic_at "$t" 0 514649fb || gen_die "not both an ISO and a qcow2"
    [ "$(qemu_format "$t")" = qcow2 ] || gen_die "qemu-img does not take the ISO for a qcow2"
    ;;
gpt)
    truncate -s 4M "$t" && sgdisk -n 1:2048:0 -t 1:8300 "$t" >/dev/null 2>&1 || gen_die "sgdisk failed"
    sfdisk -d "$t" 2>/dev/null | grep -q '^label: gpt' && magic_at "$t" 512 4546492050415254 ||
        gen_die "no GPT in the sample"
    ;;
mbr)
    truncate -s 4M "$t" && printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$t" >/dev/null 2>&1 ||
        gen_die "sfdisk failed"
    sfdisk -d "$t" 2>/dev/null | grep -q '^label: dos' && magic_at "$t" 510 55aa || gen_die "no MBR in the sample"
    ;;
random)
    head -c 1M /dev/urandom >"$t" || gen_die "cannot read /dev/urandom"
    ;;
*)
    gen_die "unknown kind $kind" ;;
esac
[ -s "$t" ] || gen_die "empty $kind sample"
sz=$(stat -c %s "$t")
[ $((sz % 512)) -eq 0 ] || truncate -s $(((sz / 512 + 1) * 512)) "$t" || gen_die "cannot pad $t"
cp "$t" "$out" || gen_die "cannot write $out"
