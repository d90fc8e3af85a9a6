# shellcheck shell=bash
# examples/lib.sh: what the example scripts (demo.sh, nova-image-cache.sh,
# forensic.sh) share: output, the cleanup trap, the build, mounting and
# unmounting safeimgfs, key files and LUKS images.  Bash; sourced by them,
# never run.  Not for the tests (they have tests/lib.sh, which fails with
# exit 1 or skips with 77 instead of telling a person what went wrong).
#
# Sourcing it sets
#   ROOT       the project
#   BUILD      the build directory: $SAFEIMGFS_BUILD, default ROOT/build
#   SAFEIMGFS, INSPECT   the two programs in it
#   PY         Debian's own python3 when there is one (it only parses JSON,
#              and must start fast: not whatever wrapper comes first in PATH)
#   B G R Y N  bold, green, red, yellow and normal, when stdout is a terminal
#   DAEMON     the pid of the safeimgfs started by mount_safeimgfs (or empty)
# A script then sets MNT (its mount point) and LOG (the daemon's log) and
# calls ex_begin, which installs the cleanup trap.  A script with more to
# undo than the mount defines before_unmount and/or after_unmount: the trap
# calls them, with errexit off, around its own unmount.
#
# Functions (each described where it is defined): step say ok note die
# indent rel sha quiet; ex_begin; build_stale build_in deps_and_build;
# mount_safeimgfs unmount_safeimgfs image_fields; hex_of random_hex
# write_secret qemu_luks luks_encrypt_file.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SAFEIMGFS_BUILD:-$ROOT/build}
SAFEIMGFS=$BUILD/safeimgfs
# shellcheck disable=SC2034 # for the scripts that source this file
INSPECT=$BUILD/safeimg-inspect
DAEMON=
EX_NAME=${0##*/}
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
note() { printf '    %snote%s %s\n' "$Y" "$N" "$*"; }
die() {
    printf '\n%s%s failed:%s %s\n' "$R" "$EX_NAME" "$N" "$*" >&2
    exit 1
}
indent() { sed 's/^/    | /'; }
rel() { printf '%s' "${1#"$ROOT"/}"; }   # a path as seen from the project root
sha() { sha256sum <"$1" | cut -d' ' -f1; }

# Runs a quiet command, showing its output only if it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" | indent
        die "command failed: $*"
    fi
}

# ------------------------------------------------------------ start, cleanup

# Whatever happens, leave no mount and no daemon behind, and show the
# daemon's log when something failed.
_ex_cleanup() {
    local rc=$? _
    set +e
    case $rc in
    130 | 143) printf '\n%sinterrupted%s: cleaning up\n' "$R" "$N" >&2 ;;
    esac
    if declare -F before_unmount >/dev/null; then
        before_unmount
    fi
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
    fi
    if [ -n "$DAEMON" ]; then
        # An unmounted daemon exits by itself; give it 5 s before SIGTERM.
        for _ in $(seq 50); do
            kill -0 "$DAEMON" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$DAEMON" 2>/dev/null && kill "$DAEMON" 2>/dev/null
        wait "$DAEMON" 2>/dev/null
    fi
    if declare -F after_unmount >/dev/null; then
        after_unmount
    fi
    if [ "$rc" -ne 0 ] && [ -s "$LOG" ]; then
        printf '\nsafeimgfs log (%s):\n' "$LOG" >&2
        sed 's/^/    /' "$LOG" >&2
    fi
    exit "$rc"
}

# ex_begin NAME TITLE TEXT: installs the cleanup trap, checks for root and
# FUSE, prints "TITLE: TEXT" and the project, and unmounts $MNT if an earlier
# run left it mounted.  NAME starts every "NAME failed:" message.
ex_begin() {
    EX_NAME=$1
    : "${MNT:?set MNT before ex_begin}" "${LOG:?set LOG before ex_begin}"
    trap _ex_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [ "$(id -u)" -eq 0 ] || die "run me as root (sudo $0): I install packages, create LUKS volumes and mount FUSE"
    [ -c /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse)"
    printf '%s%s%s: %s\n' "$B" "$2" "$N" "$3"
    say "project: $ROOT"
    if mountpoint -q "$MNT" 2>/dev/null; then
        say "unmounting a mount left over from an earlier run"
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
    fi
}

# ------------------------------------------------------------------- build

# build_stale PROGRAM...: prints why $BUILD must be built (a program is
# missing, or a source is newer than the first one); nothing if it need not.
build_stale() {
    local p
    for p in "$@"; do
        if [ ! -x "$p" ]; then
            printf '%s is missing' "$(rel "$p")"
            return 0
        fi
    done
    if [ -n "$(find "$ROOT/src" "$ROOT/configure.ac" "$ROOT/Makefile.am" -newer "$1" -print -quit)" ]; then
        printf 'sources changed since the last build'
    fi
}

# build_in LOGFILE TARGET...: makes TARGETs in $BUILD, output in LOGFILE; on
# failure shows its tail and dies.  autoreconf and configure run only when
# their output is missing: an existing build directory keeps its configure
# options, and make reruns the autotools by itself when configure.ac or
# Makefile.am changed.
build_in() {
    local log=$1
    shift
    {
        { [ -x "$ROOT/configure" ] || (cd "$ROOT" && autoreconf -fi); } &&
            mkdir -p "$BUILD" &&
            { [ -f "$BUILD/Makefile" ] || (cd "$BUILD" && "$ROOT/configure"); } &&
            make -C "$BUILD" -j2 "$@"
    } >"$log" 2>&1 || {
        tail -n 30 "$log" | indent
        die "the build failed (see $(rel "$log"))"
    }
}

# deps_and_build LOGFILE: installs the packages that are missing, builds
# safeimgfs in $BUILD if it is stale (saying so) and prints its version.
deps_and_build() {
    "$ROOT/contrib/install-deps-debian.sh"
    if [ -n "$(build_stale "$SAFEIMGFS")" ]; then
        say "building in $(rel "$BUILD") (log: $(rel "$1"))"
        build_in "$1" safeimgfs
    fi
    ok "$("$SAFEIMGFS" --version)"
}

# ------------------------------------------------------------ mount, unmount

# mount_safeimgfs OPTIONS STORE: starts safeimgfs -f -o OPTIONS STORE $MNT in
# the background, its log in $LOG and its pid in DAEMON, and waits (10 s at
# most) for the mount to appear.
mount_safeimgfs() {
    local _
    "$SAFEIMGFS" -f -o "$1" "$2" "$MNT" 2>"$LOG" &
    DAEMON=$!
    for _ in $(seq 100); do
        mountpoint -q "$MNT" && return 0
        kill -0 "$DAEMON" 2>/dev/null || die "safeimgfs exited before mounting"
        sleep 0.1
    done
    die "$(rel "$MNT") is not mounted after 10 s"
}

# unmount_safeimgfs COMMAND...: unmounts $MNT with COMMAND (fusermount3 -u,
# umount) and checks that the daemon then exits with status 0.
unmount_safeimgfs() {
    local rc=0
    "$@" "$MNT"
    wait "$DAEMON" || rc=$?
    DAEMON=
    [ "$rc" -eq 0 ] || die "safeimgfs exited with status $rc"
    ok "unmounted; safeimgfs exited with status 0"
}

# image_fields NAME FIELD...: fields of NAME's entry in $MNT's status.json,
# separated by spaces ("" for a null field; nothing if NAME is not listed).
image_fields() {
    "$PY" -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]:
    if i["name"] == sys.argv[2]:
        print(" ".join("" if i.get(f) is None else str(i[f]) for f in sys.argv[3:]))' \
        "$MNT/.safeimgfs/status.json" "$@"
}

# ------------------------------------------------------------ keys, images

# hex_of FILE: FILE's bytes as lowercase hex, without a newline.
hex_of() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# random_hex N: N random bytes as lowercase hex, without a newline.
random_hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }

# write_secret FILE: standard input into FILE, mode 0600 from the moment it
# exists.  Used as it is, with no trailing newline: cryptsetup, qemu and
# safeimgfs (which drops one trailing newline) then agree on the passphrase.
write_secret() { (umask 077 && cat >"$1" && chmod 0600 "$1"); }

# Runs a qemu command that creates the LUKS header of OUTPUT, retrying when
# qemu's PBKDF benchmark fails: it times itself with per-thread CPU usage,
# which is too coarse on some virtual machines ("Unable to get accurate CPU
# usage").
#   qemu_luks OUTPUT COMMAND...
qemu_luks() {
    local target=$1 out _
    shift
    for _ in $(seq 10); do
        rm -f "$target"
        out=$("$@" 2>&1) && return 0
        case $out in
        *"Unable to get accurate CPU usage"*) ;;
        *) printf '%s\n' "$out" | indent; die "command failed: $*" ;;
        esac
    done
    die "qemu kept failing with 'Unable to get accurate CPU usage' (10 attempts): $*"
}

# luks_encrypt_file FILE KEYFILE ROOM_MIB CRYPTSETUP-OPTION...: encrypts FILE
# in place as a LUKS2 volume whose data segment is exactly FILE's bytes.
# Offline reencryption needs no device-mapper: FILE grows by ROOM_MIB MiB
# (--reduce-device-size, of which the header takes half), and the part after
# the data segment is cut off again.  PBKDF2 with 1000 iterations, so that
# unlocking is fast.
luks_encrypt_file() {
    local file=$1 key=$2 room=$3 size off
    shift 3
    size=$(stat -c %s "$file")
    truncate -s "+${room}M" "$file"
    quiet cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size "${room}M" -q \
        --key-file "$key" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$@" "$file"
    # The first "offset:" of luksDump is the data segment's (in bytes).
    off=$(cryptsetup luksDump "$file" | sed -n 's/^[[:space:]]*offset:[[:space:]]*\([0-9]*\) \[bytes\]/\1/p' | head -n 1)
    [ -n "$off" ] || die "cannot read the data offset of $(rel "$file")"
    truncate -s $((off + size)) "$file"
}
