#!/bin/bash
# Integration test: the mount is read-only, and signals unmount cleanly.
#
# On a mount of one good LUKS2 image (plus a rejected one), every modifying
# operation fails with EROFS: write/read-write/truncating opens of a view and of
# status.json, create, mkdir, mknod, symlink, link, unlink, rmdir, rename,
# chmod, chown, truncate, utime (touch) on views, on the root and on
# .safeimgfs, and on a rejected (invisible) name; the shell tools (echo >, touch,
# rm, mkdir, mv, chmod, truncate) report "Read-only file system". Afterwards the
# view and the store files are unchanged.
# Then: SIGTERM to the daemon unmounts and exits 0; SIGINT the same;
# fusermount3 -u ends the daemon with status 0.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup sha256sum
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT"
chmod 700 "$KEYS"
write_key "$KEYS/good.img.key" pw-good
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" good.img "$KEYS/good.img.key" "$PLAIN"
write_key "$SCRATCH/other" pw-other
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" nokey.img "$SCRATCH/other" "$PLAIN"
gen_wait

store_sums() {
    (cd "$STORE" && sha256sum -- * | LC_ALL=C sort)
}
before=$(store_sums)

mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" 2
assert_eq accepted "$(status_field "$MNT" good.img state)" "good.img state"
assert_eq rejected "$(status_field "$MNT" nokey.img state)" "nokey.img state"
V=$MNT/good.img
S=$MNT/.safeimgfs/status.json

ops=(
    'os.open(a[0], os.O_WRONLY)|V'
    'os.open(a[0], os.O_RDWR)|V'
    'os.open(a[0], os.O_WRONLY | os.O_TRUNC)|V'
    'os.open(a[0], os.O_WRONLY | os.O_APPEND)|V'
    'os.open(a[0], os.O_WRONLY | os.O_CREAT, 0o600)|V'
    'os.open(a[0], os.O_WRONLY)|S'
    'os.open(a[0], os.O_RDWR | os.O_TRUNC)|S'
    'os.open(a[0] + "/new.img", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)|M'
    'os.open(a[0] + "/nokey.img", os.O_WRONLY | os.O_CREAT, 0o600)|M'
    'os.open(a[0] + "/.safeimgfs/new", os.O_WRONLY | os.O_CREAT, 0o600)|M'
    'os.mkdir(a[0] + "/newdir")|M'
    'os.mkdir(a[0] + "/.safeimgfs/newdir")|M'
    'os.mkfifo(a[0] + "/fifo")|M'
    'os.mknod(a[0] + "/node", 0o600 | 0o100000)|M'
    'os.symlink("good.img", a[0] + "/link")|M'
    'os.link(a[0] + "/good.img", a[0] + "/hard")|M'
    'os.unlink(a[0])|V'
    'os.unlink(a[0])|S'
    'os.rmdir(a[0] + "/.safeimgfs")|M'
    'os.rename(a[0], a[0] + ".moved")|V'
    'os.rename(a[0] + "/good.img", a[0] + "/.safeimgfs/x")|M'
    'os.rename(a[0] + "/.safeimgfs", a[0] + "/renamed")|M'
    'os.chmod(a[0], 0o644)|V'
    'os.chmod(a[0], 0o777)|M'
    'os.chmod(a[0], 0o644)|S'
    'os.chown(a[0], 0, 0)|V'
    'os.chown(a[0], 1, 1)|M'
    'os.truncate(a[0], 0)|V'
    'os.truncate(a[0], 1 << 30)|V'
    'os.truncate(a[0], 0)|S'
    'os.utime(a[0], None)|V'
    'os.utime(a[0], (0, 0))|V'
    'os.utime(a[0], None)|M'
    'os.utime(a[0], None)|S'
)
errors=""
for op in "${ops[@]}"; do
    expr=${op%|*}
    case ${op##*|} in V) arg=$V ;; S) arg=$S ;; M) arg=$MNT ;; esac
    r=$(errno_of "$expr" "$arg")
    [ "$r" = EROFS ] || errors+="
  $expr on ${arg#"$SCRATCH"/}: $r"
done
# A write through a descriptor opened read-only must fail too (EBADF from the kernel).
r=$(errno_of 'os.write(os.open(a[0], os.O_RDONLY), b"x")' "$V")
[ "$r" = EBADF ] || [ "$r" = EROFS ] || errors+="
  write on a read-only descriptor: $r"
[ -z "$errors" ] || fail "operations that did not fail with EROFS:$errors"
note "${#ops[@]} modifying system calls fail with EROFS"

# The same through the usual tools, which must report the errno's message.
tool_errors=""
tool() {   # tool DESCRIPTION CMD...
    local d=$1; shift
    local out
    if out=$("$@" 2>&1); then
        tool_errors+="
  $d succeeded"
    elif [[ $out != *"Read-only file system"* ]]; then
        tool_errors+="
  $d: $out"
    fi
}
tool "echo > view" sh -c 'echo x > "$1"' sh "$V"
tool "echo >> view" sh -c 'echo x >> "$1"' sh "$V"
tool "echo > new file" sh -c 'echo x > "$1"' sh "$MNT/newfile"
tool "touch view" touch "$V"
tool "touch new file" touch "$MNT/newfile"
tool "rm view" rm -f "$V"
tool "mkdir" mkdir "$MNT/d"
tool "mv view" mv "$V" "$MNT/renamed.img"
tool "chmod view" chmod 600 "$V"
tool "truncate view" truncate -s 0 "$V"
tool "dd into view" dd if=/dev/zero of="$V" bs=512 count=1 conv=notrunc status=none
[ -z "$tool_errors" ] || fail "tools did not fail with 'Read-only file system':$tool_errors"

assert_eq "regular file 440 1048576" "$(stat -c '%F %a %s' "$V")" "view after write attempts"
assert_eq "$(sha256_of "$PLAIN/good.img.plain")" "$(sha256_of "$V")" "view content after write attempts"
listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq good.img "$listed" "readdir after write attempts"

# SIGTERM: clean unmount, exit status 0.
_kill TERM "$MOUNT_ID" || fail "daemon not running before SIGTERM"
wait_daemon_exit "$MOUNT_ID" 30 || fail "daemon still running 30 s after SIGTERM"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after SIGTERM"
if mountpoint -q "$MNT"; then fail "$MNT still mounted after SIGTERM"; fi
grep -qs " $MNT fuse" /proc/self/mounts && fail "$MNT still in /proc/self/mounts after SIGTERM"
note "SIGTERM unmounted cleanly"

# SIGINT: the same.
mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" 2
assert_eq "$(sha256_of "$PLAIN/good.img.plain")" "$(sha256_of "$V")" "view content after remount"
_kill INT "$MOUNT_ID" || fail "daemon not running before SIGINT"
wait_daemon_exit "$MOUNT_ID" 30 || fail "daemon still running 30 s after SIGINT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after SIGINT"
if mountpoint -q "$MNT"; then fail "$MNT still mounted after SIGINT"; fi
note "SIGINT unmounted cleanly"

# SIGTERM while inspection may still be running (right after mount).
mount_store "$STORE" "$MNT" "keydir=$KEYS"
_kill TERM "$MOUNT_ID" || fail "daemon not running before the early SIGTERM"
wait_daemon_exit "$MOUNT_ID" 30 || fail "daemon still running 30 s after an early SIGTERM"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after an early SIGTERM"
if mountpoint -q "$MNT"; then fail "$MNT still mounted after an early SIGTERM"; fi

# fusermount3 -u.
mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" 2
umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
if mountpoint -q "$MNT"; then fail "$MNT still mounted after fusermount3 -u"; fi

assert_eq "$before" "$(store_sums)" "store files after the test"
echo "PASS: $TEST_NAME"
exit 0
