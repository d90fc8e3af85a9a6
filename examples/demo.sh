#!/usr/bin/env bash
# demo.sh: safeimgfs end to end, in under a minute.
#
# Builds safeimgfs if needed, makes a small store of encrypted images (a LUKS1
# volume, a LUKS2 volume and a malicious LUKS volume whose plaintext is a
# qcow2 image with /etc/passwd as its backing file), mounts the store, shows
# which views appeared and why the malicious image did not, proves that a
# view is exactly the plaintext that was encrypted, and unmounts.
#
# Run as root on Debian 12, from anywhere:  sudo examples/demo.sh
# It writes only under examples/ (store/, work/ and the mount point mnt/)
# and build/.  See examples/README.md for how to read its output.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EX=$ROOT/examples
STORE=$EX/store
KEYS=$STORE/keys
WORK=$EX/work
MNT=$EX/mnt
BUILD=$ROOT/build
SAFEIMGFS=$BUILD/safeimgfs
INSPECT=$BUILD/safeimg-inspect
LOG=$WORK/safeimgfs.log
DAEMON=
# Debian's own Python (installed by install-deps) rather than whatever
# wrapper comes first in PATH: it only parses JSON, and must start fast.
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

# ------------------------------------------------------------------ output

if [ -t 1 ]; then
    B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' Y=$'\e[33m' N=$'\e[0m'
else
    B='' G='' R='' Y='' N=''
fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
say() { printf '    %s\n' "$*"; }
ok() { printf '    %sOK%s  %s\n' "$G" "$N" "$*"; }
die() {
    printf '\n%sdemo failed:%s %s\n' "$R" "$N" "$*" >&2
    exit 1
}
indent() { sed 's/^/    | /'; }

# ------------------------------------------------------------------ cleanup

# Whatever happens, leave no mount and no daemon behind.
cleanup() {
    local rc=$? _
    set +e
    case $rc in
    130 | 143) printf '\n%sinterrupted%s: cleaning up\n' "$R" "$N" >&2 ;;
    esac
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
    fi
    if [ -n "$DAEMON" ]; then
        for _ in $(seq 50); do
            kill -0 "$DAEMON" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$DAEMON" 2>/dev/null; then
            kill "$DAEMON" 2>/dev/null
        fi
        wait "$DAEMON" 2>/dev/null
    fi
    rmdir "$MNT" 2>/dev/null
    if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then
        printf '\nsafeimgfs log (%s):\n' "$LOG" >&2
        sed 's/^/    /' "$LOG" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" -eq 0 ] || die "run me as root (sudo $0): I install packages, create LUKS volumes and mount FUSE"
[ -c /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"

printf '%ssafeimgfs demo%s: plaintext views of encrypted images, only after inspection\n' "$B" "$N"
say "project: $ROOT"

# Start from scratch: no mount, store or scratch files from an earlier run.
if mountpoint -q "$MNT" 2>/dev/null; then
    say "unmounting a mount left over from an earlier run"
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
fi
rm -rf "$STORE" "$WORK"
mkdir -p "$WORK"

# ------------------------------------------------------------ dependencies

step "1. Dependencies (contrib/install-deps-debian.sh)"
"$ROOT/contrib/install-deps-debian.sh"
ok "all packages installed"

# ------------------------------------------------------------------- build

step "2. Build (out of tree, in build/)"
stale=
if [ ! -x "$SAFEIMGFS" ] || [ ! -x "$INSPECT" ]; then
    stale="build/safeimgfs is missing"
elif [ -n "$(find "$ROOT/src" "$ROOT/configure.ac" "$ROOT/Makefile.am" -newer "$SAFEIMGFS" -print -quit)" ]; then
    stale="sources changed since the last build"
fi
if [ -n "$stale" ]; then
    say "building: $stale (log: examples/work/build.log)"
    {
        # autoreconf and configure only when their output is missing: an
        # existing build/ keeps its configure options, and make reruns the
        # autotools by itself when configure.ac or Makefile.am changed.
        if [ ! -x "$ROOT/configure" ]; then
            (cd "$ROOT" && autoreconf -fi)
        fi
        mkdir -p "$BUILD"
        if [ ! -f "$BUILD/Makefile" ]; then
            (cd "$BUILD" && ../configure)
        fi
        make -C "$BUILD" -j2 safeimgfs safeimg-inspect
    } >"$WORK/build.log" 2>&1 || {
        tail -n 30 "$WORK/build.log" | indent
        die "the build failed (see examples/work/build.log)"
    }
    ok "built $("$SAFEIMGFS" --version)"
else
    ok "up to date: $("$SAFEIMGFS" --version)"
fi

# ------------------------------------------------------------------- store

step "3. An image store with three encrypted images"
mkdir -p "$STORE" "$MNT"
install -d -m 0700 "$KEYS"

# A random passphrase per image, as a key manager would hand out, with no
# trailing newline (cryptsetup and qemu use the file's bytes as they are).
newkey() {
    (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEYS/$1.key")
}

# Runs a quiet command, showing its output only if it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" | indent
        die "command failed: $*"
    fi
}

# Encrypts the first 16 MiB of random data in place with offline
# reencryption (no device-mapper needed), then trims the file so that the
# data segment holds exactly the known plaintext.
#   luks_encrypt IMAGE FILE_MIB PLAIN_MIB OPTIONS...
luks_encrypt() {
    local img=$1 file_mib=$2 plain_mib=$3
    shift 3
    head -c "${file_mib}M" /dev/urandom >"$STORE/$img"
    # With --reduce-device-size 8M the header takes the first 4 MiB and the
    # file's first (FILE - 8) MiB become the encrypted data.
    head -c "${plain_mib}M" "$STORE/$img" >"$WORK/$img.plain"
    quiet cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 8M -q \
        --key-file "$KEYS/$img.key" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$@" "$STORE/$img"
    truncate -s "$((4 + plain_mib))M" "$STORE/$img"
}

# web.img: LUKS2 as cryptsetup makes it today (AES-256-XTS, 4096-byte sectors).
newkey web.img
luks_encrypt web.img 16 8 --sector-size 4096
say "web.img   LUKS2, aes-xts-plain64, 512-bit key, 4096-byte sectors, 8 MiB of random data"

# db.img: LUKS1 as OpenStack Cinder makes it (AES-128-XTS, 512-byte sectors).
# Offline reencryption needs device-mapper for LUKS1, so make LUKS2 with
# LUKS1-compatible settings and convert it.
newkey db.img
luks_encrypt db.img 12 4 --sector-size 512 --cipher aes-xts-plain64 --key-size 256
quiet cryptsetup convert --type luks1 -q "$STORE/db.img"
say "db.img    LUKS1, aes-xts-plain64, 256-bit key, 512-byte sectors, 4 MiB of random data"

# evil.img: the attack.  A qcow2 image whose backing file is a host file;
# whoever opens it as qcow2 reads /etc/passwd as the guest's disk.  Its
# uploader encrypts it, so no inspection of the ciphertext can see it.
quiet qemu-img create -f qcow2 -b /etc/passwd -F raw "$WORK/evil-payload.qcow2" 1M
newkey evil.img
made=
for _ in $(seq 10); do
    # qemu times its PBKDF with per-thread CPU usage, which is too coarse on
    # some virtual machines: retry when it says so.
    if out=$(qemu-img convert -f raw -O luks \
            --object "secret,id=sec0,file=$KEYS/evil.img.key" \
            -o key-secret=sec0,iter-time=10 "$WORK/evil-payload.qcow2" "$STORE/evil.img" 2>&1); then
        made=yes
        break
    fi
    rm -f "$STORE/evil.img"
    case $out in
    *"Unable to get accurate CPU usage"*) continue ;;
    *) printf '%s\n' "$out" | indent; die "qemu-img could not create evil.img" ;;
    esac
done
[ -n "$made" ] || die "qemu-img kept failing with 'Unable to get accurate CPU usage' (10 attempts)"
say "evil.img  LUKS1 made by qemu-img; its plaintext is a qcow2 image:"
qemu-img info "$WORK/evil-payload.qcow2" | grep -E '^(file format|backing file)' | indent

# A download still in progress: never a candidate.
head -c 1M /dev/urandom >"$STORE/upload.img.part"
say "upload.img.part  an unfinished download (ignored: *.part)"
say "keys: examples/store/keys/NAME.key, mode 0600 (the keys/ directory itself is not a candidate)"

# ------------------------------------------------------------------- mount

step "4. Mount: safeimgfs -o keydir=examples/store/keys examples/store examples/mnt"
"$SAFEIMGFS" -f -o "keydir=$KEYS" "$STORE" "$MNT" 2>"$LOG" &
DAEMON=$!
for _ in $(seq 100); do
    mountpoint -q "$MNT" && break
    kill -0 "$DAEMON" 2>/dev/null || die "safeimgfs exited before mounting"
    sleep 0.1
done
mountpoint -q "$MNT" || die "examples/mnt is not mounted after 10 s"
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
rows = [("NAME", "STATE", "CHECK", "REASON")]
rows += [(i["name"], i["state"], i["check"] or "-", i["reason"] or "") for i in images]
w = [max(len(r[k]) for r in rows) for k in range(3)]
for r in rows:
    print(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}")
EOF

# The demo's expectations: both legitimate images accepted, the attack
# rejected because of what its plaintext is.
verdict() {
    "$PY" -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]:
    if i["name"] == sys.argv[2]:
        print(i["state"], i["check"], i["reason"])' "$MNT/.safeimgfs/status.json" "$1"
}
for img in web.img db.img; do
    case $(verdict "$img") in
    "accepted inner.raw "*) ;;
    *) die "$img was not accepted: $(verdict "$img")" ;;
    esac
done
case $(verdict evil.img) in
"rejected inner.qcow2 "*"backing file"*) ;;
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
    view=$(sha256sum <"$MNT/$img" | cut -d' ' -f1)
    plain=$(sha256sum <"$WORK/$img.plain" | cut -d' ' -f1)
    say "sha256 of examples/mnt/$img        $view"
    say "sha256 of examples/work/$img.plain $plain"
    [ "$view" = "$plain" ] || die "the view of $img differs from its plaintext"
    ok "$img: identical ($(stat -c %s "$MNT/$img") bytes)"
done

step "8. What qemu sees: a raw disk (qemu-img info -f raw examples/mnt/web.img)"
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

step "9. Unmount (fusermount3 -u examples/mnt)"
fusermount3 -u "$MNT"
rc=0
wait "$DAEMON" || rc=$?
DAEMON=
[ "$rc" -eq 0 ] || die "safeimgfs exited with status $rc"
ok "unmounted; safeimgfs exited with status 0"
say "Its log, one line per verdict:"
grep '^safeimgfs:' "$LOG" | indent

printf '\n%sDone in %d s.%s  2 views served, 1 malicious image refused, 1 temporary file ignored.\n' \
    "$B" "$SECONDS" "$N"
say "The store is still in examples/store (keys in examples/store/keys) and the"
say "plaintexts in examples/work.  To mount it again by hand (Ctrl-C unmounts):"
say "  mkdir -p $MNT"
say "  $SAFEIMGFS -f -o keydir=$KEYS \\"
say "      $STORE $MNT"
