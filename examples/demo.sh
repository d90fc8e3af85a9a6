#!/usr/bin/env bash
# demo.sh: safeimgfs end to end, in under a minute.
#
# Builds safeimgfs if needed, makes a small store of encrypted images (a LUKS1
# volume, a LUKS2 volume, a qcow2 image with LUKS encryption, and a malicious
# LUKS volume whose plaintext is a qcow2 image with /etc/passwd as its backing
# file), mounts the store, shows which views appeared and why the malicious
# image did not, proves that a view is exactly the plaintext that was
# encrypted (for the qcow2 image: exactly what qemu-img itself decrypts, with
# the image's holes intact), and unmounts.
#
# Run as root on Debian 12, from anywhere:  sudo examples/demo.sh
# It writes only under examples/ (store/, work/ and the mount point mnt/)
# and build/ (or the build directory named by SAFEIMGFS_BUILD).  See
# examples/README.md for how to read its output.
set -euo pipefail

# shellcheck source=examples/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EX=$ROOT/examples
STORE=$EX/store
KEYS=$STORE/keys
WORK=$EX/work
MNT=$EX/mnt
LOG=$WORK/safeimgfs.log

# The mount point is the demo's own: remove it once unmounted.
after_unmount() { rmdir "$MNT" 2>/dev/null; }

ex_begin demo "safeimgfs demo" "plaintext views of encrypted images, only after inspection"

# Start from scratch: no store or scratch files from an earlier run.
rm -rf "$STORE" "$WORK"
mkdir -p "$WORK"

# ------------------------------------------------------------ dependencies

step "1. Dependencies (contrib/install-deps-debian.sh)"
"$ROOT/contrib/install-deps-debian.sh"
ok "all packages installed"

# ------------------------------------------------------------------- build

step "2. Build (out of tree, in $(rel "$BUILD")/)"
stale=$(build_stale "$SAFEIMGFS" "$INSPECT")
if [ -n "$stale" ]; then
    say "building: $stale (log: $(rel "$WORK")/build.log)"
    build_in "$WORK/build.log" safeimgfs safeimg-inspect
    ok "built $("$SAFEIMGFS" --version)"
else
    ok "up to date: $("$SAFEIMGFS" --version)"
fi

# ------------------------------------------------------------------- store

step "3. An image store with four encrypted images"
mkdir -p "$STORE" "$MNT"
install -d -m 0700 "$KEYS"

# A random passphrase per image, as a key manager would hand out, with no
# trailing newline (cryptsetup and qemu use the file's bytes as they are).
newkey() { random_hex 16 | write_secret "$KEYS/$1.key"; }

# Random data, kept in WORK/IMAGE.plain, encrypted in place as STORE/IMAGE.
#   luks_encrypt IMAGE PLAIN_MIB CRYPTSETUP-OPTION...
luks_encrypt() {
    local img=$1 plain_mib=$2
    shift 2
    head -c "${plain_mib}M" /dev/urandom >"$WORK/$img.plain"
    cp "$WORK/$img.plain" "$STORE/$img"
    luks_encrypt_file "$STORE/$img" "$KEYS/$img.key" 8 "$@"
}

# web.img: LUKS2 as cryptsetup makes it today (AES-256-XTS, 4096-byte sectors).
newkey web.img
luks_encrypt web.img 8 --sector-size 4096
say "web.img   LUKS2, aes-xts-plain64, 512-bit key, 4096-byte sectors, 8 MiB of random data"

# db.img: LUKS1 as OpenStack Cinder makes it (AES-128-XTS, 512-byte sectors).
# Offline reencryption needs device-mapper for LUKS1, so make LUKS2 with
# LUKS1-compatible settings and convert it.
newkey db.img
luks_encrypt db.img 4 --sector-size 512 --cipher aes-xts-plain64 --key-size 256
quiet cryptsetup convert --type luks1 -q "$STORE/db.img"
say "db.img    LUKS1, aes-xts-plain64, 256-bit key, 512-byte sectors, 4 MiB of random data"

# evil.img: the attack.  A qcow2 image whose backing file is a host file;
# whoever opens it as qcow2 reads /etc/passwd as the guest's disk.  Its
# uploader encrypts it, so no inspection of the ciphertext can see it.
quiet qemu-img create -f qcow2 -b /etc/passwd -F raw "$WORK/evil-payload.qcow2" 1M
newkey evil.img
qemu_luks "$STORE/evil.img" qemu-img convert -f raw -O luks \
    --object "secret,id=sec0,file=$KEYS/evil.img.key" \
    -o key-secret=sec0,iter-time=10 "$WORK/evil-payload.qcow2" "$STORE/evil.img"
say "evil.img  LUKS1 made by qemu-img; its plaintext is a qcow2 image:"
qemu-img info "$WORK/evil-payload.qcow2" | grep -E '^(file format|backing file)' | indent

# vm.qcow2: a qcow2 image with qemu's built-in LUKS encryption, as OpenStack
# keeps encrypted qcow2 images (disk_format=qcow2).  32 MiB virtual, 64 KiB
# clusters; qemu-io writes a known byte pattern at a few scattered offsets,
# then zeroes one of the clusters it wrote.  Everything else is unallocated.
# The passphrase reaches qemu through the key file, never the command line.
VM_SIZE=$((32 << 20))
VM_WRITES=(
    "0x11 0 65536"                       # the first cluster
    "0x22 3145728 196608"                # three clusters at 3 MiB ...
    "0x33 20971520 65536"                # one at 20 MiB
    "0x44 $((VM_SIZE - 65536)) 65536"    # and the last one
)
VM_ZERO="3211264 65536"                  # ... the middle one of the three zeroed
# Where the view must have data (start length), all the rest being holes.
VM_DATA="0 65536
3145728 65536
3276800 65536
20971520 65536
$((VM_SIZE - 65536)) 65536"
newkey vm.qcow2
vm_secret="secret,id=s,file=$KEYS/vm.qcow2.key"
qemu_luks "$STORE/vm.qcow2" qemu-img create -f qcow2 --object "$vm_secret" \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "$STORE/vm.qcow2" "$VM_SIZE"
io_cmds=()
for w in "${VM_WRITES[@]}"; do
    read -r pat off len <<<"$w"
    io_cmds+=(-c "write -P $pat $off $len")
done
io_cmds+=(-c "write -z $VM_ZERO")
out=$(qemu-io --object "$vm_secret" \
    --image-opts "driver=qcow2,file.filename=$STORE/vm.qcow2,encrypt.key-secret=s" "${io_cmds[@]}" 2>&1) ||
    { printf '%s\n' "$out" | indent; die "qemu-io could not write vm.qcow2"; }
# qemu-io exits 0 even when a command failed: every command must report it wrote.
[ "$(grep -c '^wrote ' <<<"$out")" -eq $((${#io_cmds[@]} / 2)) ] ||
    { printf '%s\n' "$out" | indent; die "qemu-io did not complete every write to vm.qcow2"; }
say "vm.qcow2  qcow2 with LUKS encryption (encrypt.format=luks, made by qemu-img), 32 MiB virtual;"
say "          qemu-io wrote patterns 0x11, 0x22, 0x33, 0x44 at 0, 3 MiB, 20 MiB and the last 64 KiB,"
say "          then zeroed the 64 KiB at 3 MiB + 64 KiB; the rest was never written"

# A download still in progress: never a candidate.
head -c 1M /dev/urandom >"$STORE/upload.img.part"
say "upload.img.part  an unfinished download (ignored: *.part)"
say "keys: examples/store/keys/NAME.key, mode 0600 (the keys/ directory itself is not a candidate)"

# ------------------------------------------------------------------- mount

step "4. Mount: safeimgfs -o keydir=examples/store/keys examples/store examples/mnt"
mount_safeimgfs "keydir=$KEYS" "$STORE"
ok "mounted (pid $DAEMON); inspection runs in the background"

# status.json lists every candidate; wait until none is pending.
status() {
    "$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d[sys.argv[2]])' \
        "$MNT/.safeimgfs/status.json" "$1"
}
pending=
for _ in $(seq 300); do
    pending=$(status pending)
    [ "$pending" = 0 ] && break
    sleep 0.1
done
[ "$pending" = 0 ] || die "still $pending image(s) pending after 30 s"
ok "every verdict is in: $(status accepted) accepted, $(status rejected) rejected ($(status pending) pending)"

# ------------------------------------------------------------------- views

step "5. The views (ls -l examples/mnt)"
# shellcheck disable=SC2012 # ls -l is what a person would type
ls -l "$MNT" | indent
say "Only accepted images appear, read-only.  The malicious one is not there at all:"
if out=$(ls "$MNT/evil.img" 2>&1); then
    die "evil.img is visible in the mount"
fi
printf '%s\n' "$out" | indent

step "6. The verdicts (examples/mnt/.safeimgfs/status.json)"
"$PY" - "$MNT/.safeimgfs/status.json" <<'EOF' | indent
import json, sys

images = json.load(open(sys.argv[1]))["images"]
rows = [("NAME", "OUTER", "STATE", "CHECK", "REASON")]
rows += [(i["name"], i["outer_format"] or "-", i["state"], i["check"] or "-", i["reason"] or "")
         for i in images]
w = [max(len(r[k]) for r in rows) for k in range(4)]
for r in rows:
    print("  ".join(f"{r[k]:<{w[k]}}" for k in range(4)) + "  " + r[4])
EOF

# The demo's expectations: the three legitimate images accepted, each as
# the outer format it was made as and as a raw disk of the size it was made
# with; the attack rejected because of what its plaintext is.
verdict() { image_fields "$1" state check outer_format inner_format size reason; }
for want in "web.img luks2 8388608" "db.img luks1 4194304" "vm.qcow2 qcow2+luks $VM_SIZE"; do
    read -r img outer size <<<"$want"
    case $(verdict "$img") in
    "accepted inner.raw $outer raw $size "*) ;;
    *) die "$img was not accepted as $outer with a raw plaintext of $size bytes: $(verdict "$img")" ;;
    esac
done
case $(verdict evil.img) in
"rejected inner.qcow2 luks1 qcow2 "*"backing file"*) ;;
*) die "evil.img was not rejected as a qcow2 with a backing file: $(verdict evil.img)" ;;
esac
say ""
say "${Y}Why evil.img was rejected:${N} its header, cipher and key were fine, but once"
say "decrypted, its content starts with a qcow2 header that names /etc/passwd as"
say "its backing file.  Any consumer that lets the bytes choose the format"
say "(qemu-img without -f, for one) would have copied this host's /etc/passwd"
say "into a guest disk.  safeimgfs decrypts and probes the first and last MiB of"
say "every image, and serves a view only when nothing but a raw disk is found."
say "The same verdict without mounting anything:"
"$INSPECT" --keydir "$KEYS" "$STORE/evil.img" 2>&1 | indent || true

# ----------------------------------------------------------------- content

step "7. A view is exactly the plaintext that was encrypted"
for img in web.img db.img; do
    view=$(sha "$MNT/$img")
    plain=$(sha "$WORK/$img.plain")
    say "sha256 of examples/mnt/$img        $view"
    say "sha256 of examples/work/$img.plain $plain"
    [ "$view" = "$plain" ] || die "the view of $img differs from its plaintext"
    ok "$img: identical ($(stat -c %s "$MNT/$img") bytes)"
done

step "8. A qcow2+LUKS view: what qemu decrypts, holes included (examples/mnt/vm.qcow2)"
# qemu's own decryption of the image, as OpenStack would run it today.
qemu-img convert --object "$vm_secret" \
    --image-opts "driver=qcow2,file.filename=$STORE/vm.qcow2,encrypt.key-secret=s" \
    -O raw "$WORK/vm.qcow2.raw"
# And what the writes should have produced, computed without any qcow2 code.
"$PY" - "$WORK/vm.qcow2.expected" "$VM_SIZE" "$VM_ZERO" "${VM_WRITES[@]}" <<'EOF'
import sys
out, size, zero, writes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
buf = bytearray(size)
for w in writes:
    pat, off, n = w.split()
    buf[int(off):int(off) + int(n)] = bytes([int(pat, 16)]) * int(n)
off, n = map(int, zero.split())
buf[off:off + n] = bytes(n)
open(out, "wb").write(buf)
EOF
view=$(sha "$MNT/vm.qcow2")
qemu=$(sha "$WORK/vm.qcow2.raw")
want=$(sha "$WORK/vm.qcow2.expected")
say "sha256 of examples/mnt/vm.qcow2                 $view"
say "sha256 of qemu-img convert -O raw of the image  $qemu"
say "sha256 of the patterns qemu-io wrote            $want"
[ "$qemu" = "$want" ] || die "qemu-img's own plaintext of vm.qcow2 is not what qemu-io wrote"
[ "$view" = "$qemu" ] || die "the view of vm.qcow2 differs from qemu-img's plaintext"
ok "vm.qcow2: identical ($(stat -c %s "$MNT/vm.qcow2") bytes)"
say "Where the image holds data (qemu-img map -f raw examples/mnt/vm.qcow2); the rest are"
say "holes, unallocated or zero clusters that read as zeros without touching the cipher:"
(cd "$MNT" && qemu-img map -f raw vm.qcow2) | indent
# qemu-img learns the layout from SEEK_DATA/SEEK_HOLE on the view: it must
# report data exactly where qemu-io wrote, and nowhere else.
got=$(qemu-img map -f raw --output=json "$MNT/vm.qcow2" | "$PY" -c '
import json, sys
for e in json.load(sys.stdin):
    if e["data"]:
        print(e["start"], e["length"])')
[ "$got" = "$VM_DATA" ] || die "the view's data runs are not where qemu-io wrote: got
$got
want
$VM_DATA"
ok "data exactly where qemu-io wrote: $(wc -l <<<"$VM_DATA") runs of 64 KiB in $((VM_SIZE >> 20)) MiB; qemu-img convert skips the rest"

step "9. What qemu sees: a raw disk (qemu-img info -f raw examples/mnt/web.img)"
qemu-img info -f raw "$MNT/web.img" | indent
qemu-img info -f raw "$MNT/web.img" | grep -q '^file format: raw' || die "qemu-img does not see a raw disk"
say "Consumers can copy it straight away, e.g.:"
say "  qemu-img convert -f raw -O qcow2 examples/mnt/web.img web.qcow2"
if out=$(touch "$MNT/new-file" 2>&1); then
    die "creating a file in the mount succeeded"
fi
say "And nothing can be written:"
printf '%s\n' "$out" | indent

# ----------------------------------------------------------------- unmount

step "10. Unmount (fusermount3 -u examples/mnt)"
unmount_safeimgfs fusermount3 -u
say "Its log, one line per verdict:"
grep '^safeimgfs:' "$LOG" | indent

printf '\n%sDone in %d s.%s  3 views served (LUKS2, LUKS1, qcow2+LUKS), 1 malicious image refused, 1 temporary file ignored.\n' \
    "$B" "$SECONDS" "$N"
say "The store is still in examples/store (keys in examples/store/keys) and the"
say "plaintexts in examples/work.  To mount it again by hand (Ctrl-C unmounts):"
say "  mkdir -p $MNT"
say "  $SAFEIMGFS -f -o keydir=$KEYS \\"
say "      $STORE $MNT"
