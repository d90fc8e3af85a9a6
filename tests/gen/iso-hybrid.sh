#!/bin/bash
# Make a hybrid ISO: an ISO 9660 filesystem whose system area holds an MBR
# with one partition over the image, the layout of installer images that
# boot from a CD and from a USB stick alike (for the "iso_hybrid" policy
# key, tests/integ-policy.sh).
#
# usage: iso-hybrid.sh OUTFILE
# With syslinux's isohybrid and isolinux.bin (packages syslinux-utils and
# isolinux) it is the real thing: a genisoimage El Torito image booting
# isolinux.bin, then `isohybrid`.  Without them the same layout is made by
# hand: a plain genisoimage ISO and an MBR partition of type 0x17 from
# sector 64, written by sfdisk.
# Checked: "CD001" at 32769, 55 AA at 510, sfdisk reads a dos label with
# exactly one partition.  OUTFILE is zero-padded to a whole 512-byte sector.
set -u
. "$(dirname "$0")/common.sh"

[ $# -eq 1 ] || gen_die "usage: iso-hybrid.sh OUTFILE"
out=$1
gen_need genisoimage sfdisk
gen_tmpdir
t="$GEN_TMP/h.iso" tree="$GEN_TMP/tree"
mkdir "$tree" && echo "safeimgfs hybrid ISO sample" >"$tree/readme.txt" || gen_die "cannot make the ISO tree"

ISOLINUX=/usr/lib/ISOLINUX/isolinux.bin
if command -v isohybrid >/dev/null 2>&1 && [ -r "$ISOLINUX" ]; then
    cp "$ISOLINUX" "$tree/" &&
        genisoimage -quiet -o "$t" -b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 \
            -boot-info-table "$tree" || gen_die "genisoimage (El Torito) failed"
    isohybrid "$t" >/dev/null 2>&1 || gen_die "isohybrid failed"
else
    genisoimage -quiet -o "$t" "$tree" || gen_die "genisoimage failed"
    printf 'start=64, type=17, bootable\n' | sfdisk -q --no-reread --wipe never "$t" >/dev/null 2>&1 ||
        gen_die "sfdisk failed"
fi

magic_at() {   # FILE OFFSET HEX
    [ "$(od -An -tx1 -v -j "$2" -N $((${#3} / 2)) "$1" | tr -d ' \n')" = "$3" ]
}
magic_at "$t" 32769 4344303031 || gen_die "no ISO 9660 descriptor at 32769"
magic_at "$t" 510 55aa || gen_die "no MBR signature at 510"
dump=$(sfdisk -d "$t" 2>/dev/null) || gen_die "sfdisk cannot read the MBR"
grep -q '^label: dos' <<<"$dump" && [ "$(grep -c ' : start=' <<<"$dump")" -eq 1 ] ||
    gen_die "not exactly one MBR partition: $dump"
sz=$(stat -c %s "$t")
[ $((sz % 512)) -eq 0 ] || truncate -s $(((sz / 512 + 1) * 512)) "$t" || gen_die "cannot pad $t"
cp "$t" "$out" || gen_die "cannot write $out"
