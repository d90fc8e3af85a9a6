#!/usr/bin/env bash
# forensic.sh: browsing an encrypted disk image read-only through safeimgfs.
#
# Evidence is often kept encrypted at rest. This demo makes a small
# "acquired" disk (GPT, an EFI system partition with FAT, a Linux partition
# with ext4), records its SHA-256 as the acquisition hash, encrypts it as a
# LUKS volume in an evidence store, and then examines it only through the
# safeimgfs view: the hash of the view equals the acquisition hash, the
# partition table is read with sfdisk, the file systems with mtools and
# debugfs at the partitions' offsets (no loop device, no root needed for
# that part), and, when loop devices are available, with a read-only loop
# device and a read-only mount. Nothing can write to the view, and the
# encrypted evidence file is unchanged afterwards.
#
# Run as root on Debian 12, from anywhere:  sudo examples/forensic.sh
# It writes only under examples/work/forensic/ and build/ (or the build
# directory named by SAFEIMGFS_BUILD). See examples/forensic.md.
set -euo pipefail

# shellcheck source=examples/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE=$ROOT/examples/work/forensic
EVIDENCE=$BASE/evidence        # the store: encrypted images only
SRC=$BASE/acquired             # what was put on the disk (to compare with)
CASEKEY=$BASE/case-1234.key    # the case passphrase
MNT=$BASE/views
EXTRACT=$BASE/extracted
LOG=$BASE/safeimgfs.log
DISK=disk01.luks
LOOP=''
LOOPMNTS=()
# mtools checks that a FAT fits its "device"; here the device is the whole
# disk and the FAT one partition of it.
export MTOOLS_SKIP_CHECK=1

# Before safeimgfs is unmounted: unmount the partitions and detach the loop
# device (it keeps the view open, and so the mount busy).
before_unmount() {
    local m
    for m in "${LOOPMNTS[@]}"; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    if [ -n "$LOOP" ]; then
        partx -d "$LOOP" 2>/dev/null
        losetup -d "$LOOP" 2>/dev/null
    fi
}

ex_begin forensic "safeimgfs for forensics" "an encrypted disk image, examined read-only through its view"

rm -rf "$BASE"
mkdir -p "$EVIDENCE" "$SRC" "$MNT" "$EXTRACT"

# ------------------------------------------------------- dependencies, build

step "1. Dependencies and build"
# Among the packages: mtools (FAT without mounting) and e2fsprogs (debugfs).
deps_and_build "$BASE/build.log"

# ------------------------------------------------------------ the evidence

step "2. The acquired disk: GPT, an EFI system partition (FAT) and a Linux root (ext4)"
mkdir -p "$SRC/esp/EFI/BOOT" "$SRC/root/home/alice/Documents" "$SRC/root/etc"
head -c 40000 /dev/urandom >"$SRC/esp/EFI/BOOT/BOOTX64.EFI"
printf 'timeout 3\ndefault linux\n' >"$SRC/esp/LOADER.CONF"
printf 'date,payee,amount\n2026-01-02,ACME Ltd,1200.00\n2026-01-09,J. Smith,87.50\n' \
    >"$SRC/root/home/alice/Documents/ledger.csv"
head -c 200000 /dev/urandom >"$SRC/root/home/alice/Documents/photo.jpg"
printf 'suspect-laptop\n' >"$SRC/root/etc/hostname"

RAW=$BASE/acquired.raw
truncate -s 32M "$RAW"
sfdisk -q "$RAW" <<'EOF'
label: gpt
unit: sectors
start=2048, size=16384, type=U, name="EFI system partition"
start=18432, type=L, name="root"
EOF
# part N FIELD: start or size (sectors) of partition N, from sfdisk's JSON.
part() {
    sfdisk -J "$2" | "$PY" -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][int(sys.argv[1]) - 1]
print(p[sys.argv[2]])' "$1" "$3"
}
P1=$(part 1 "$RAW" start) P1N=$(part 1 "$RAW" size)
P2=$(part 2 "$RAW" start) P2N=$(part 2 "$RAW" size)
# The file systems are made at the partitions' offsets in the file: no loop device.
mkfs.vfat -F 16 -s 1 -n ESP --offset "$P1" "$RAW" $((P1N / 2)) >/dev/null 2>&1 || die "mkfs.vfat failed"
mmd -i "$RAW@@$((P1 * 512))" ::/EFI ::/EFI/BOOT
mcopy -i "$RAW@@$((P1 * 512))" "$SRC/esp/EFI/BOOT/BOOTX64.EFI" ::/EFI/BOOT/
mcopy -i "$RAW@@$((P1 * 512))" "$SRC/esp/LOADER.CONF" ::/
mkfs.ext4 -q -F -L root -E "offset=$((P2 * 512)),nodiscard" -d "$SRC/root" "$RAW" "$((P2N / 2))k" ||
    die "mkfs.ext4 failed"
ACQ=$(sha "$RAW")
say "partition 1: sectors $P1..$((P1 + P1N - 1)), FAT16 \"ESP\": /EFI/BOOT/BOOTX64.EFI, /LOADER.CONF"
say "partition 2: sectors $P2..$((P2 + P2N - 1)), ext4 \"root\": /home/alice/Documents/{ledger.csv,photo.jpg}, /etc/hostname"
say "acquisition hash (SHA-256 of the disk image): $ACQ"

step "3. Encrypted at rest: a LUKS1 volume in the evidence store ($(rel "$EVIDENCE"))"
# One passphrase for the case. qemu-img wraps the disk in LUKS without
# device-mapper; `cryptsetup reencrypt` would refuse a file that already holds
# a partition table.
printf 'case-1234-%s' "$(random_hex 12)" | write_secret "$CASEKEY"
qemu_luks "$EVIDENCE/$DISK" qemu-img convert -f raw -O luks --object "secret,id=s,file=$CASEKEY" \
    -o key-secret=s,iter-time=10 "$RAW" "$EVIDENCE/$DISK"
rm -f "$RAW"
cryptsetup luksDump "$EVIDENCE/$DISK" | grep -E '^(Version|Cipher name|Cipher mode|MK bits|Payload offset)' | indent
BLOB=$(sha "$EVIDENCE/$DISK")
BLOBTIME=$(stat -c %y "$EVIDENCE/$DISK")
say "the plaintext disk image is deleted: from now on only the encrypted file exists"

# ------------------------------------------------------------------- mount

OPTS="keyfile=$CASEKEY,umask=0277"
step "4. Mount: safeimgfs -o keyfile=$(rel "$CASEKEY"),umask=0277 $(rel "$EVIDENCE") $(rel "$MNT")"
mount_safeimgfs "$OPTS" "$EVIDENCE"
V=$MNT/$DISK
# Opening the view waits for its verdict: no polling needed.
[ -f "$V" ] || die "no view of $DISK: $(grep "$DISK" "$LOG" || true)"
"$PY" - "$MNT/.safeimgfs/status.json" "$DISK" <<'EOF' | indent
import json, sys
for i in json.load(open(sys.argv[1]))["images"]:
    if i["name"] == sys.argv[2]:
        print(f'{i["name"]}: {i["state"]} [{i["check"]}] {i["reason"]}')
        for p in i.get("probes", {}).get("inner", []):
            print(f'  found in the plaintext: {p["format"]} at offset {p["offset"]}: {p["detail"]}')
EOF
# shellcheck disable=SC2012 # ls -l is what a person would type
ls -l "$V" | indent
ok "a view, readable by root only (umask=0277)"

# ------------------------------------------------------------- integrity

step "5. The view is bit for bit the acquired disk"
VIEWSHA=$(sha "$V")
say "SHA-256 of the view       $VIEWSHA"
say "acquisition hash          $ACQ"
[ "$VIEWSHA" = "$ACQ" ] || die "the view's hash differs from the acquisition hash"
ok "identical: the analysis below is of the acquired data"

# --------------------------------------------------------- partition table

step "6. The partition table (sfdisk -d on the view, a plain file)"
sfdisk -d "$V" | indent
[ "$(part 1 "$V" start) $(part 2 "$V" start)" = "$P1 $P2" ] || die "the view's partition table differs"

# ------------------------------------------------- file systems, no loop

step "7. The file systems at their offsets, without a loop device"
say "FAT (mtools, image@@byte offset):  mdir -i VIEW@@$((P1 * 512)) ::/EFI/BOOT"
mdir -i "$V@@$((P1 * 512))" ::/EFI/BOOT | indent
mcopy -n -i "$V@@$((P1 * 512))" ::/EFI/BOOT/BOOTX64.EFI "$EXTRACT/BOOTX64.EFI"
cmp -s "$EXTRACT/BOOTX64.EFI" "$SRC/esp/EFI/BOOT/BOOTX64.EFI" || die "BOOTX64.EFI extracted with mtools differs"
ok "BOOTX64.EFI extracted with mcopy: identical to what was put on the disk"
say "ext4 (debugfs, read-only, image?offset=bytes):  debugfs -R 'ls -l /home/alice/Documents' 'VIEW?offset=$((P2 * 512))'"
EXT="$V?offset=$((P2 * 512))"
debugfs -R 'ls -l /home/alice/Documents' "$EXT" 2>/dev/null | indent
debugfs -R 'stat /home/alice/Documents/ledger.csv' "$EXT" 2>/dev/null | grep -E '^ *(Inode|User|[a-z]*time):' | indent
debugfs -R "dump /home/alice/Documents/ledger.csv $EXTRACT/ledger.csv" "$EXT" 2>/dev/null
debugfs -R "dump /home/alice/Documents/photo.jpg $EXTRACT/photo.jpg" "$EXT" 2>/dev/null
for f in ledger.csv photo.jpg; do
    cmp -s "$EXTRACT/$f" "$SRC/root/home/alice/Documents/$f" || die "$f extracted with debugfs differs"
done
ok "ledger.csv and photo.jpg extracted with debugfs: identical to what was put on the disk"

# ------------------------------------------------- file systems, loop device

step "8. The same with a read-only loop device and read-only mounts"
if ! LOOP=$(losetup -r -P --show -f "$V" 2>"$BASE/losetup.err"); then
    LOOP=
    note "no loop device here ($(head -n 1 "$BASE/losetup.err")): step 7 is the way"
else
    say "losetup -r -P --show -f VIEW  ->  $LOOP"
    if [ ! -b "${LOOP}p2" ]; then
        # A kernel built without partition table support scans nothing:
        # partx reads the table itself and adds the partitions.
        note "the kernel found no partitions on $LOOP: adding them with partx -a"
        partx -a "$LOOP" || die "partx -a $LOOP failed"
    fi
    lsblk -o NAME,SIZE,RO,FSTYPE,LABEL "$LOOP" 2>/dev/null | indent || true
    ROOTMNT=$BASE/mnt-root ESPMNT=$BASE/mnt-esp
    mkdir -p "$ROOTMNT" "$ESPMNT"
    # ro on a read-only device; noload: no journal replay, which would write.
    if mount -o ro,noload "${LOOP}p2" "$ROOTMNT" 2>"$BASE/mount.err"; then
        LOOPMNTS+=("$ROOTMNT")
        say "mount -o ro,noload ${LOOP}p2: $(findmnt -no FSTYPE,OPTIONS "$ROOTMNT")"
        (cd "$ROOTMNT" && find home etc -type f | sort) | indent
        cmp -s "$ROOTMNT/home/alice/Documents/photo.jpg" "$SRC/root/home/alice/Documents/photo.jpg" ||
            die "photo.jpg read through the loop mount differs"
        ok "photo.jpg through the read-only mount: identical"
        umount "$ROOTMNT"
    else
        note "mounting the ext4 partition failed: $(head -n 1 "$BASE/mount.err")"
    fi
    if grep -qw vfat /proc/filesystems || modprobe vfat 2>/dev/null; then
        if mount -o ro "${LOOP}p1" "$ESPMNT" 2>"$BASE/mount.err"; then
            LOOPMNTS+=("$ESPMNT")
            (cd "$ESPMNT" && find . -type f | sort) | indent
            cmp -s "$ESPMNT/EFI/BOOT/BOOTX64.EFI" "$SRC/esp/EFI/BOOT/BOOTX64.EFI" ||
                die "BOOTX64.EFI read through the loop mount differs"
            ok "BOOTX64.EFI through the read-only mount: identical"
            umount "$ESPMNT"
        else
            note "mounting the FAT partition failed: $(head -n 1 "$BASE/mount.err")"
        fi
    else
        note "this kernel has no vfat file system: the FAT partition is read with mtools only (step 7)"
    fi
    partx -d "$LOOP" 2>/dev/null || true
    losetup -d "$LOOP"
    LOOP=
    ok "loop device detached"
fi

# ------------------------------------------------------------- read-only

step "9. Nothing can change the evidence"
if out=$(dd if=/dev/zero of="$V" bs=512 count=1 conv=notrunc 2>&1); then
    die "writing to the view succeeded"
fi
printf '%s\n' "$out" | head -n 1 | indent
[ "$(sha "$V")" = "$ACQ" ] || die "the view changed"
if [ "$(sha "$EVIDENCE/$DISK")" != "$BLOB" ] || [ "$(stat -c %y "$EVIDENCE/$DISK")" != "$BLOBTIME" ]; then
    die "the encrypted evidence file changed"
fi
ok "the view is read-only; the encrypted evidence file has the same hash and mtime as before"

step "10. Unmount (fusermount3 -u $(rel "$MNT"))"
unmount_safeimgfs fusermount3 -u

printf '\n%sDone in %d s.%s  Partition table, FAT and ext4 read through the view; acquisition hash verified.\n' \
    "$B" "$SECONDS" "$N"
