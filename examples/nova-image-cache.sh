#!/usr/bin/env bash
# nova-image-cache.sh: safeimgfs in front of a Nova compute host's image cache.
#
# Nova downloads each Glance image to instances/_base/NAME.part and renames it
# to _base/NAME when complete. For encrypted images, this demo has safeimgfs
# serve a plaintext view of each one under a second directory, once the image
# has passed inspection, with keys fetched from a key manager by a key_command
# program (a stand-in for Barbican here) in the os-brick convention
# (key_format=hex). qemu then uses the views as raw backing files.
#
# Steps: makes three "Glance" images (a LUKS1 volume as Cinder makes them, a
# qcow2 image with LUKS encryption, and a malicious one) and their secrets,
# puts them in the cache, mounts, checks the verdicts and the contents,
# downloads a fourth image the way Nova does (.part, then rename) while the
# filesystem is mounted, boots nothing but builds an instance disk on a view
# with qemu-img and checks what qemu reads through it, then unmounts.
#
# Run as root on Debian 12, from anywhere:  sudo examples/nova-image-cache.sh
# It writes only under examples/work/nova-image-cache/ and build/ (or the
# build directory named by SAFEIMGFS_BUILD). See examples/nova-image-cache.md.
set -euo pipefail

# shellcheck source=examples/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE=$ROOT/examples/work/nova-image-cache
CACHE=$BASE/instances/_base          # Nova's image cache: the store
INSTANCES=$BASE/instances            # instance disks
MNT=$BASE/views                      # where the views appear
GLANCE=$BASE/glance                  # the images "in Glance", and their properties
BARBICAN=$BASE/barbican              # the stand-in key manager: one file per secret
PLAIN=$BASE/plain                    # what each image was made from (to compare)
KEYCMD=$BASE/bin/fake-barbican-key   # the key_command program
KEYLOG=$BASE/key-requests.log
LOG=$BASE/safeimgfs.log

ex_begin nova-image-cache "safeimgfs and a Nova image cache" \
    "encrypted Glance images, keys from a key manager"

rm -rf "$BASE"
mkdir -p "$CACHE" "$MNT" "$GLANCE" "$PLAIN" "$BASE/bin"
install -d -m 0700 "$BARBICAN"

# ------------------------------------------------------- dependencies, build

step "1. Dependencies and build"
deps_and_build "$BASE/build.log"
# This demo needs the key sources of the key manager work; say so plainly
# rather than fail later with libfuse's "unknown option".
help=$("$SAFEIMGFS" --help 2>&1 || true)
for opt in key_command key_format; do
    grep -q "$opt=" <<<"$help" || die "this safeimgfs has no -o $opt= option (see safeimgfs --help)"
done

# ---------------------------------------------------------------- Glance

step "2. Three encrypted images in \"Glance\", their secrets in \"Barbican\""

# A Barbican secret: 32 random bytes (what Cinder and Glance generate for a
# 256-bit key). The LUKS passphrase is their lowercase hex (os-brick's
# convention), so the passphrase file is written here only to make the
# image, and deleted afterwards.
new_secret() {   # new_secret ID: BARBICAN/ID, and the hex passphrase in GLANCE/ID.pass
    head -c 32 /dev/urandom | write_secret "$BARBICAN/$1"
    hex_of "$BARBICAN/$1" | write_secret "$GLANCE/$1.pass"
}

# Plaintext that no format probe can take for anything: a text marker padded
# to 512 bytes, then random data (and a run of zeros, a hole for qcow2).
make_plain() {   # make_plain FILE BYTES TAG
    {
        printf 'safeimgfs nova-image-cache example plaintext: %s' "$3"
        head -c $((512 - 46 - ${#3})) /dev/zero
        head -c $(($2 - 512)) /dev/urandom
    } >"$1"
    [ "$(stat -c %s "$1")" -eq "$2" ] || die "cannot make $1"
}

# glance_props FILE DISK_FORMAT ENCRYPT_FORMAT KEY_ID SIZE: the image's Glance
# properties, as the sidecar Nova's download writes next to the image.
glance_props() {
    "$PY" - "$@" <<'EOF'
import json, sys
path, disk_format, fmt, key_id, size = sys.argv[1:]
props = {"disk_format": disk_format, "container_format": "bare",
         "os_encrypt_format": fmt, "os_encrypt_key_id": key_id,
         "os_encrypt_key_deletion_policy": "on_image_deletion",
         "os_decrypt_container_format": "bare"}
if size:
    props["os_decrypt_size"] = int(size)
json.dump(props, open(path, "w"), indent=2)
EOF
}

# Nova names a cached image by the SHA-1 of the image id.
cache_name() { printf '%s' "$1" | sha1sum | cut -c1-40; }

# cryptsetup_image IMAGE_ID KEY_ID MIB TAG ROOM_MIB CRYPTSETUP-OPTION...:
# GLANCE/IMAGE_ID, a LUKS2 volume made by cryptsetup from MIB MiB of
# make_plain, which is kept in PLAIN/ under the image's cache name.
cryptsetup_image() {
    local img=$1 key=$2 mib=$3 tag=$4 room=$5 n
    shift 5
    n=$(cache_name "$img")
    new_secret "$key"
    make_plain "$PLAIN/$n" $((mib << 20)) "$tag"
    cp "$PLAIN/$n" "$GLANCE/$img"
    luks_encrypt_file "$GLANCE/$img" "$GLANCE/$key.pass" "$room" "$@"
}

# Image 1: a LUKS1 volume as Cinder makes it (aes-xts-plain64, 256-bit key,
# 512-byte sectors), uploaded to Glance: disk_format=luks. Offline
# reencryption needs no device-mapper; LUKS1 reencryption would, so the
# volume is made as LUKS2 and converted.
IMG1=5c1f6a12-3b7e-4d0a-9a61-0e2f1b6c7d01 KEY1=a1f0c9d2-7e4b-4c38-8f15-2b6d0e9a3c11
N1=$(cache_name "$IMG1")
cryptsetup_image "$IMG1" "$KEY1" 8 "cirros-like base image" 4 \
    --cipher aes-xts-plain64 --key-size 256 --sector-size 512
quiet cryptsetup convert --type luks1 -q "$GLANCE/$IMG1"
glance_props "$GLANCE/$IMG1.json" luks LUKSv1 "$KEY1" $((8 << 20))
say "image $IMG1  LUKS1 (cryptsetup, aes-xts-plain64 256-bit), 8 MiB; secret $KEY1"

# Image 2: qcow2 with qemu's built-in LUKS encryption (disk_format=qcow2),
# 32 MiB virtual, of which the first 3 MiB and 1 MiB at 20 MiB hold data;
# qemu-img leaves the zeros unallocated.
IMG2=9d3e7b44-0c2a-4f6e-b1d8-6a5c4e3f2b02 KEY2=b2e1d0c3-8f5a-4d49-9026-3c7e1f0b4d22
N2=$(cache_name "$IMG2")
new_secret "$KEY2"
make_plain "$BASE/img2.raw" $((3 << 20)) "qcow2 base image"
truncate -s $((32 << 20)) "$BASE/img2.raw"
dd if=/dev/urandom of="$BASE/img2.raw" bs=1M seek=20 count=1 conv=notrunc status=none
qemu_luks "$GLANCE/$IMG2" qemu-img convert -f raw -O qcow2 \
    --object "secret,id=s,file=$GLANCE/$KEY2.pass" \
    -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "$BASE/img2.raw" "$GLANCE/$IMG2"
mv "$BASE/img2.raw" "$PLAIN/$N2"
glance_props "$GLANCE/$IMG2.json" qcow2 LUKSv1 "$KEY2" ""
say "image $IMG2  qcow2 + LUKS (qemu-img), 32 MiB virtual, 4 MiB of data; secret $KEY2"

# Image 3: the attack. Uploaded as disk_format=luks, but its plaintext is a
# qcow2 image whose backing file is the compute host's /etc/passwd: a
# consumer that let the bytes choose the format would copy that file into a
# guest disk.
IMG3=2f8c5a90-6d1b-4e7c-8a34-9b0e2d1c5f03 KEY3=c3f2e1d4-9a6b-4e5a-a137-4d8f2a1c5e33
N3=$(cache_name "$IMG3")
new_secret "$KEY3"
qemu-img create -q -f qcow2 -b /etc/passwd -F raw "$BASE/evil.qcow2" 16M
qemu_luks "$GLANCE/$IMG3" qemu-img convert -f raw -O luks \
    --object "secret,id=s,file=$GLANCE/$KEY3.pass" -o key-secret=s,iter-time=10 \
    "$BASE/evil.qcow2" "$GLANCE/$IMG3"
glance_props "$GLANCE/$IMG3.json" luks LUKSv1 "$KEY3" ""
say "image $IMG3  LUKS1 (qemu-img) whose plaintext is a qcow2 with backing file /etc/passwd; secret $KEY3"

# Image 4, downloaded later while the cache is mounted: LUKS2, 4096-byte sectors.
IMG4=7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c04 KEY4=d4a3b2c1-0f9e-4d8c-b7a6-5e4d3c2b1a44
N4=$(cache_name "$IMG4")
cryptsetup_image "$IMG4" "$KEY4" 4 "image uploaded later" 2 --sector-size 4096
glance_props "$GLANCE/$IMG4.json" luks LUKSv2 "$KEY4" $((4 << 20))
say "image $IMG4  LUKS2 (cryptsetup, 4096-byte sectors), 4 MiB; secret $KEY4 (downloaded in step 6)"
rm -f "$GLANCE"/*.pass "$BASE/evil.qcow2"
say "(PBKDF costs are tiny so that the demo is fast; real images take seconds per unlock)"

# ------------------------------------------------------------ Nova's cache

step "3. Nova's image cache: $(rel "$CACHE")"
# What Nova's download would leave: the image under the SHA-1 of its id, and
# (the contract with safeimgfs) its Glance properties next to it as NAME.json,
# written before the image itself so that they are there when it is inspected.
for img in "$IMG1" "$IMG2" "$IMG3"; do
    n=$(cache_name "$img")
    cp "$GLANCE/$img.json" "$CACHE/$n.json"
    cp "$GLANCE/$img" "$CACHE/$n.part"
    mv "$CACHE/$n.part" "$CACHE/$n"
done
(cd "$CACHE" && ls -l) | indent

# --------------------------------------------------------- the key_command

step "4. The key_command: $(rel "$KEYCMD")"
# safeimgfs runs it directly (no shell) as PROGRAM NAME KEY_ID, where KEY_ID is
# the os_encrypt_key_id of NAME.json, with a timeout; it must print the secret
# and exit 0. With key_format=hex safeimgfs hex-encodes the bytes itself. The
# program must be owned by root (or the mounting user) and writable by nobody
# else. A real one asks Barbican (examples/nova-image-cache.md has a sketch);
# this one reads the stand-in.
cat >"$KEYCMD" <<EOF
#!/bin/sh
# fake-barbican-key NAME KEY_ID: print the secret KEY_ID, as Barbican's
# GET /v1/secrets/KEY_ID/payload (Accept: application/octet-stream) would.
set -eu
name=\$1 id=\$2
printf '%s name=%s key_id=%s\n' "\$(date +%T)" "\$name" "\$id" >>"$KEYLOG"
case \$id in
'' | *[!0-9a-f-]*) echo "fake-barbican-key: \$name: no usable key id '\$id'" >&2; exit 2 ;;
esac
exec cat "$BARBICAN/\$id"
EOF
chmod 0700 "$KEYCMD"
indent <"$KEYCMD"

# ------------------------------------------------------------------- mount

OPTS="key_command=$KEYCMD,key_format=hex"
step "5. Mount: safeimgfs -o $OPTS \\"
say "         $(rel "$CACHE") $(rel "$MNT")"
# -f keeps the log (one line per verdict) in a file; on a host this is an
# fstab line or a systemd unit (contrib/fstab.example, contrib/README.md).
mount_safeimgfs "$OPTS" "$CACHE"
ok "mounted (pid $DAEMON)"

STATUS=$MNT/.safeimgfs/status.json
# wait_verdict NAME: poll status.json (<= 30 s) until NAME is listed and not pending.
wait_verdict() {
    local s=
    for _ in $(seq 300); do
        s=$(image_fields "$1" state 2>/dev/null || true)
        case $s in accepted | rejected) return 0 ;; esac
        sleep 0.1
    done
    die "no verdict for $1 after 30 s (state: '${s:-not listed}')"
}
for n in "$N1" "$N2" "$N3"; do wait_verdict "$n"; done

"$PY" - "$STATUS" <<'EOF' | indent
import json, sys
images = json.load(open(sys.argv[1]))["images"]
rows = [("NAME", "OUTER", "STATE", "CHECK", "KEY")]
for i in images:
    key = " ".join(x for x in (i.get("key_source"), i.get("key_form")) if x) or "-"
    rows.append((i["name"][:12] + "...", i["outer_format"] or "-", i["state"], i["check"] or "-", key))
w = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
for r in rows:
    print("  ".join(f"{r[k]:<{w[k]}}" for k in range(len(r))).rstrip())
EOF
expect() {   # expect NAME STATE CHECK OUTER
    local got
    got="$(image_fields "$1" state check outer_format)"
    [ "$got" = "$2 $3 $4" ] || die "$1: expected '$2 $3 $4', got '$got' ($(image_fields "$1" reason))"
}
expect "$N1" accepted inner.raw luks1
expect "$N2" accepted inner.raw qcow2+luks
expect "$N3" rejected inner.qcow2 luks1
ok "image 1 (LUKS1) and image 2 (qcow2+LUKS) accepted; image 3 rejected: $(image_fields "$N3" reason)"
say "The key_command was asked for each image's secret, by name and key id:"
indent <"$KEYLOG"
for n in "$N1" "$N2" "$N3"; do
    id=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["os_encrypt_key_id"])' "$CACHE/$n.json")
    grep -q "name=$n key_id=$id\$" "$KEYLOG" || die "the key_command was not called with $n $id"
done
ok "called as PROGRAM NAME KEY_ID for every image"
# shellcheck disable=SC2012 # ls -l is what a person would type
ls -l "$MNT" | indent
[ ! -e "$MNT/$N3" ] || die "the rejected image 3 is visible"
[ ! -e "$MNT/$N1.json" ] || die "a sidecar is visible"

[ "$(sha "$MNT/$N1")" = "$(sha "$PLAIN/$N1")" ] ||
    die "the view of image 1 differs from its plaintext"
ok "image 1's view is exactly the plaintext that was encrypted ($(stat -c %s "$MNT/$N1") bytes)"
# qemu's own decryption of image 2, given the hex passphrase as Nova would.
hex_of "$BARBICAN/$KEY2" | write_secret "$BASE/key2.pass"
qemu-img convert --object "secret,id=s,file=$BASE/key2.pass" \
    --image-opts "driver=qcow2,file.filename=$CACHE/$N2,encrypt.key-secret=s" -O raw "$BASE/img2.qemu.raw"
rm -f "$BASE/key2.pass"
cmp -s "$BASE/img2.qemu.raw" "$PLAIN/$N2" || die "qemu-img's own decryption of image 2 is not its plaintext"
cmp -s "$MNT/$N2" "$PLAIN/$N2" || die "the view of image 2 differs from what qemu-img decrypts"
ok "image 2's view is what qemu-img decrypts by itself ($(stat -c %s "$MNT/$N2") bytes virtual)"

# ---------------------------------------------------- a download, live

step "6. Nova downloads image 4 while the cache is mounted (NAME.part, then rename)"
cp "$GLANCE/$IMG4.json" "$CACHE/$N4.json"
# The download, in pieces, under the temporary name.
: >"$CACHE/$N4.part"
size=$(stat -c %s "$GLANCE/$IMG4")
for ((o = 0; o < size; o += 1 << 20)); do
    dd if="$GLANCE/$IMG4" of="$CACHE/$N4.part" bs=1M skip=$((o >> 20)) seek=$((o >> 20)) count=1 \
        conv=notrunc status=none
done
if [ -e "$MNT/$N4.part" ] || [ -e "$MNT/$N4" ]; then
    die "a download in progress is visible"
fi
[ -z "$(image_fields "$N4.part" state 2>/dev/null)" ] || die "status.json lists the .part file"
ok "while it downloads, neither $N4.part nor $N4 is in the mount or in status.json"
mv "$CACHE/$N4.part" "$CACHE/$N4"
say "mv $N4.part $N4"
t0=$SECONDS
for _ in $(seq 200); do
    [ "$(image_fields "$N4" state 2>/dev/null || true)" = accepted ] && break
    sleep 0.1
done
expect "$N4" accepted inner.raw luks2
ok "picked up without remounting and accepted within $((SECONDS - t0)) s"
cmp -s "$MNT/$N4" "$PLAIN/$N4" || die "the view of image 4 differs from its plaintext"
ok "image 4's view is exactly the plaintext that was encrypted"

# ------------------------------------------------------------------ qemu

step "7. qemu uses the views: an instance disk backed by a view"
# Nova's qcow2 image backend makes each instance disk a qcow2 overlay whose
# backing file is the cached image; here the backing file is the view, and
# it is always raw: say so (-F raw), never let qemu probe it.
INST=$INSTANCES/0c9a7e55-1d2b-4c3a-8e4f-5a6b7c8d9e0f
mkdir -p "$INST"
qemu-img create -q -f qcow2 -b "$MNT/$N1" -F raw "$INST/disk"
qemu-img info --backing-chain "$INST/disk" | grep -E '^(image|file format|virtual size|backing file)' | indent
qemu-img compare -f qcow2 -F raw "$INST/disk" "$PLAIN/$N1" | indent
ok "what qemu reads through the instance disk is image 1's plaintext"
# The flat (raw) image backend copies instead; only data is read from a qcow2
# view, the holes are skipped.
qemu-img map -f raw "$MNT/$N2" | indent
qemu-img convert -f raw -O raw "$MNT/$N2" "$INST/disk.raw"
cmp -s "$INST/disk.raw" "$PLAIN/$N2" || die "a copy of image 2's view differs from its plaintext"
ok "qemu-img convert -f raw -O raw of image 2's view: identical to its plaintext"

# ----------------------------------------------------------------- unmount

step "8. Unmount (umount $(rel "$MNT"))"
unmount_safeimgfs umount
say "Its log:"
grep '^safeimgfs:' "$LOG" | cut -c1-160 | indent

printf '\n%sDone in %d s.%s  3 images served to qemu, 1 refused, every key fetched by the key_command.\n' \
    "$B" "$SECONDS" "$N"
