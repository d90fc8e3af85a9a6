#!/bin/bash
# Integration test: mounting through mount(8) and an fstab line, the way an
# operator does it, instead of running safeimgfs by hand.
#
# The path is mount(8) -> /sbin/mount.fuse3 -> /bin/sh -c "safeimgfs STORE MNT
# -o OPTS" -> safeimgfs, which detaches once the filesystem is mounted. Two
# facts shape the test:
#   - mount(8) drops PATH from the helper's environment, so /bin/sh looks
#     safeimgfs up in its built-in default PATH (/usr/local/sbin first on
#     Debian). The test therefore runs in a private mount namespace (it
#     re-executes itself under unshare) and bind-mounts a directory holding a
#     symlink "safeimgfs" -> $SAFEIMGFS over /usr/local/sbin; nothing outside
#     the namespace sees that, nor any of the test's mounts. A tmpfs over
#     /run/mount keeps libmount's utab private too.
#   - There is no -f, so lib.sh's mount_store cannot be used: the test finds
#     the detached daemon by its command line, polls for readiness itself and
#     registers each mount with lib.sh's cleanup, which unmounts and stops the
#     daemon even when a check fails.
#
# Store "image store" (a space in the name, as in the mount point: fstab
# writes it \040, mount.fuse3 quotes it for the shell): a LUKS2 and a LUKS1
# image with their keys, and one image without a key.
# Cases:
#   A. mount -t fuse.safeimgfs -o ro,keydir=KEYS STORE MNT: mounted at once
#      (fuse.safeimgfs, source safeimgfs:STORE, ro/nosuid/nodev with
#      default_permissions), the views equal their plaintexts, the keyless
#      image is rejected (key.missing) and absent, writes fail with EROFS;
#      `umount MNT` ends the daemon and all its processes.
#   B. a line of a temporary fstab (mount -T FILE MNT), with "defaults" (so
#      "rw" reaches safeimgfs), fstab-only options (noauto, nofail, _netdev,
#      x-systemd.*, comment=) that must never reach it, and
#      uid=,gid=,umask=,allow_other that must: the mount is still read-only,
#      the views have that owner and mode 0440, the owner reads them, another
#      user gets EACCES; the daemon's command line has no fstab-only option.
#   C. the legacy fstab form "/abs/path/safeimgfs#STORE MNT fuse ...", which
#      needs no PATH lookup at all (how to use a binary that is not installed).
#   D. drop_privileges without ro,nodev,nosuid,default_permissions: nothing
#      is served (safeimgfs refuses a /dev/fd/N mount point without them).
# Case B also carries relatime,nodiratime, which safeimgfs ignores.
set -u

# Run in a private mount namespace (see above), before lib.sh makes SCRATCH.
if [ "${SIF_FSTAB_NS:-0}" != 1 ]; then
    if ! command -v unshare >/dev/null 2>&1 ||
        ! unshare --mount --propagation private true 2>/dev/null; then
        echo "SKIP: ${0##*/}: cannot make a private mount namespace (unshare --mount)"
        exit 77
    fi
    SIF_FSTAB_NS=1 exec unshare --mount --propagation private /bin/bash "$0" "$@"
fi

. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup sha256sum mount umount setpriv
need_python_crypto
need_prog "$SAFEIMGFS"
HELPER=
for h in /sbin/mount.fuse3 /usr/sbin/mount.fuse3; do
    [ -x "$h" ] && HELPER=$h && break
done
[ -n "$HELPER" ] || skip "no /sbin/mount.fuse3 (package fuse3): mount -t fuse.* cannot work"
mount --help 2>&1 | grep -q -- '--fstab' || skip "this mount(8) has no --fstab (-T)"

SAFEIMGFS=$(readlink -f "$SAFEIMGFS")

# The first directory of /bin/sh's default PATH that exists gets our symlink.
BIN=$SCRATCH/bin
mkdir -p "$BIN"
ln -s "$SAFEIMGFS" "$BIN/safeimgfs"
export PATH="$BIN:$PATH"   # for completeness: mount(8) drops it anyway
SHADOW=
for d in /usr/local/sbin /usr/local/bin; do
    [ -d "$d" ] && SHADOW=$d && break
done
[ -n "$SHADOW" ] || skip "neither /usr/local/sbin nor /usr/local/bin exists to shadow"
mount --bind "$BIN" "$SHADOW" || fail "cannot bind $BIN over $SHADOW in the test's namespace"
found=$(env -i /bin/sh -c 'command -v safeimgfs') || fail "/bin/sh without PATH does not find safeimgfs"
assert_eq "$SHADOW/safeimgfs" "$found" "safeimgfs found by /bin/sh with its default PATH"
mkdir -p /run/mount || fail "cannot make /run/mount"
mount -t tmpfs -o mode=0755 sif-utab /run/mount || fail "cannot put a private tmpfs on /run/mount"

STORE="$SCRATCH/image store" PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys
mkdir -p "$STORE" "$PLAIN" "$KEYS"
chmod 700 "$KEYS"
# Case B opens views as other users: they must be able to reach the mount points.
chmod 711 "$SCRATCH"
write_key "$KEYS/disk2.img.key" pw-fstab-l2
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" disk2.img "$KEYS/disk2.img.key" "$PLAIN"
write_key "$KEYS/disk1.img.key" pw-fstab-l1
gen_bg luks-reencrypt.sh --luks1 --size-kib 2048 "$STORE" disk1.img "$KEYS/disk1.img.key" "$PLAIN"
write_key "$SCRATCH/nokey.pass" pw-nokey
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" nokey.img "$SCRATCH/nokey.pass" "$PLAIN"
gen_wait
# A download in progress, never a candidate.
head -c 4096 /dev/urandom >"$STORE/next.img.part"

# ---- helpers ---------------------------------------------------------------

# daemon_of MNT: print the PID:STARTTIME of the safeimgfs serving MNT (the
# process whose argv[2] is MNT and whose parent is not one of its own
# helpers, which share its command line).
daemon_of() {
    local f p a
    local -A match=()
    for f in /proc/[0-9]*; do
        p=${f#/proc/}
        mapfile -d '' -t a 2>/dev/null <"$f/cmdline" || continue
        if [ ${#a[@]} -ge 3 ] && [ "${a[0]##*/}" = safeimgfs ] && [ "${a[2]}" = "$1" ]; then
            match[$p]=1
        fi
    done
    for p in "${!match[@]}"; do
        local info
        info=$(_procinfo "$p") || continue
        read -r _ pp _ <<<"$info"
        [ -z "${match[$pp]:-}" ] && _ident "$p" && return 0
    done
    return 1
}

# argv_of ID: the command line of a process, arguments separated by "|".
argv_of() {
    local a
    mapfile -d '' -t a <"/proc/${1%%:*}/cmdline" || return 1
    local IFS='|'
    echo "${a[*]}"
}

# mountinfo MNT FIELD: one field of MNT's line in /proc/self/mountinfo, with
# the kernel's octal escapes (\040 for a space) decoded. FIELD: fstype,
# source, mount_opts (per mount point) or super_opts (per superblock).
mountinfo() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import re, sys
dec = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
found = None
for line in open("/proc/self/mountinfo"):
    pre, post = line.rstrip("\n").split(" - ", 1)
    pre, post = pre.split(), post.split()
    if dec(pre[4]) == sys.argv[1]:
        found = {"mount_opts": pre[5], "fstype": post[0], "source": dec(post[1]),
                 "super_opts": post[2] if len(post) > 2 else ""}
if found is None:
    sys.exit(1)
print(found[sys.argv[2]])
EOF
}

has_opt() {   # has_opt LIST OPT: OPT is one of the comma-separated LIST
    [[ ",$1," == *",$2,"* ]]
}

# after_mount MNT WHAT: the mount(8) call for MNT has returned 0. Register
# the daemon with lib.sh's cleanup, wait until the mount answers, check it is
# ours and read-only. Sets DAEMON (PID:STARTTIME).
after_mount() {
    local mnt=$1 what=$2 opts
    mountpoint -q "$mnt" || fail "$what: mount returned 0 but $mnt is not a mount point"
    DAEMON=$(daemon_of "$mnt") || {
        _MOUNTS+=("0:gone|$mnt|")
        fail "$what: $mnt is mounted but no safeimgfs process serves it"
    }
    _MOUNTS+=("$DAEMON|$mnt|")
    _MOUNT_PID["$mnt"]=$DAEMON
    note "$what: daemon ${DAEMON%%:*} ($(argv_of "$DAEMON"))"
    poll_until 30 test -r "$mnt/.safeimgfs/status.json" ||
        fail "$what: status.json not readable within 30 s"
    assert_eq fuse.safeimgfs "$(mountinfo "$mnt" fstype)" "$what: filesystem type"
    assert_eq "safeimgfs:$STORE" "$(mountinfo "$mnt" source)" "$what: mount source"
    opts=$(mountinfo "$mnt" mount_opts)
    for o in ro nosuid nodev; do
        has_opt "$opts" "$o" || fail "$what: mount options '$opts' lack $o"
    done
    opts=$(mountinfo "$mnt" super_opts)
    has_opt "$opts" default_permissions || fail "$what: superblock options '$opts' lack default_permissions"
}

# check_views MNT WHAT: verdicts, contents, the rejected and ignored names.
check_views() {
    local mnt=$1 what=$2 img
    wait_verdicts "$mnt" 3 20
    for img in disk1.img disk2.img; do
        assert_eq accepted "$(status_field "$mnt" "$img" state)" "$what: $img state"
        assert_eq "$(sha256_of "$PLAIN/$img.plain")" "$(sha256_of "$mnt/$img")" "$what: sha256 of the view of $img"
    done
    assert_eq luks1 "$(status_field "$mnt" disk1.img outer_format)" "$what: disk1.img outer format"
    assert_eq luks2 "$(status_field "$mnt" disk2.img outer_format)" "$what: disk2.img outer format"
    assert_eq rejected "$(status_field "$mnt" nokey.img state)" "$what: nokey.img state"
    assert_eq key.missing "$(status_field "$mnt" nokey.img check)" "$what: nokey.img check"
    assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$mnt/nokey.img")" "$what: stat of the rejected image"
    assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$mnt/next.img.part")" "$what: stat of the .part file"
    assert_eq "disk1.img disk2.img" "$(cd "$mnt" && echo *)" "$what: the views listed"
    assert_eq EROFS "$(errno_of 'os.open(a[0], os.O_WRONLY)' "$mnt/disk1.img")" "$what: opening a view for writing"
    assert_eq EROFS "$(errno_of 'os.open(a[0], os.O_WRONLY | os.O_CREAT, 0o600)' "$mnt/new.img")" "$what: creating a file"
}

# unmount_with_umount MNT WHAT: umount(8) must end the daemon and every
# process below it (unlock helper and workers).
unmount_with_umount() {
    local mnt=$1 what=$2 kids k
    kids=$(_descendants "${DAEMON%%:*}")
    umount "$mnt" || fail "$what: umount $mnt failed"
    ! mountpoint -q "$mnt" || fail "$what: $mnt still mounted after umount"
    poll_until 30 _dead "$DAEMON" || fail "$what: daemon ${DAEMON%%:*} still running 30 s after umount"
    for k in $kids; do
        poll_until 10 _dead "$k" || fail "$what: process ${k%%:*} of the daemon still running after umount"
    done
    note "$what: umount ended the daemon and its $(wc -w <<<"$kids") helper process(es)"
}

# ---- A: mount -t fuse.safeimgfs -------------------------------------------

MNT_A="$SCRATCH/mnt a"
mkdir -p "$MNT_A"
out=$(mount -t fuse.safeimgfs -o "ro,keydir=$KEYS" "$STORE" "$MNT_A" 2>&1) ||
    fail "A: mount -t fuse.safeimgfs failed: $out"
after_mount "$MNT_A" A
check_views "$MNT_A" A
unmount_with_umount "$MNT_A" A

# ---- B: an fstab line, mounted with mount -T FILE MNT ----------------------

MNT_B="$SCRATCH/mnt b"
MNT_C=$SCRATCH/mnt-c MNT_D=$SCRATCH/mnt-d
mkdir -p "$MNT_B" "$MNT_C" "$MNT_D"
esc() { local s=${1//\\/\\134}; s=${s// /\\040}; printf '%s' "${s//$'\t'/\\011}"; }
FSTAB=$SCRATCH/fstab
# Owner and group that exist nowhere: only the kernel's checks decide.
VUID=4242 VGID=4343
cat >"$FSTAB" <<EOF
# A temporary fstab for integ-fstab.sh: <source> <mount point> <type> <options> <dump> <pass>

$(esc "$STORE") $(esc "$MNT_B") fuse.safeimgfs defaults,relatime,nodiratime,noauto,nofail,_netdev,x-systemd.requires=network-online.target,x-systemd.mount-timeout=90,comment=sif-test,keydir=$(esc "$KEYS"),allow_other,uid=$VUID,gid=$VGID,umask=0227 0 0
$(esc "$SAFEIMGFS#$STORE") $(esc "$MNT_C") fuse ro,noauto,keydir=$(esc "$KEYS") 0 0
$(esc "$STORE") $(esc "$MNT_D") fuse.safeimgfs drop_privileges,allow_other,noauto,keydir=$(esc "$KEYS") 0 0
EOF
out=$(mount -T "$FSTAB" "$MNT_B" 2>&1) || fail "B: mount -T $FSTAB '$MNT_B' failed: $out"
after_mount "$MNT_B" B
check_views "$MNT_B" B
has_opt "$(mountinfo "$MNT_B" super_opts)" allow_other || fail "B: allow_other did not reach the mount"
argv=$(argv_of "$DAEMON")
for o in noauto nofail _netdev x-systemd comment=; do
    [[ $argv != *"$o"* ]] || fail "B: fstab-only option $o reached safeimgfs: $argv"
done
[[ $argv == *"keydir=$KEYS"* ]] || fail "B: keydir= did not reach safeimgfs: $argv"
assert_eq "$VUID:$VGID 440" "$(stat -c '%u:%g %a' "$MNT_B/disk2.img")" "B: owner and mode of a view"
# The kernel enforces the mode (default_permissions): the owner reads, others not.
got=$(setpriv --reuid=$VUID --regid=$VGID --clear-groups \
    "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' \
    "$MNT_B/disk2.img" 2>&1)
assert_eq "$(sha256_of "$PLAIN/disk2.img.plain")" "$got" "B: sha256 of a view opened by its owner"
got=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$PYTHON" -c 'import errno, sys
try:
    open(sys.argv[1], "rb")
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$MNT_B/disk2.img" 2>&1)
assert_eq EACCES "$got" "B: opening a view as another user"
unmount_with_umount "$MNT_B" B

# ---- C: the legacy "PROGRAM#SOURCE" form, with type fuse -------------------

out=$(mount -T "$FSTAB" "$MNT_C" 2>&1) || fail "C: mount -T $FSTAB $MNT_C failed: $out"
after_mount "$MNT_C" C
check_views "$MNT_C" C
argv=$(argv_of "$DAEMON")
[[ $argv == "$SAFEIMGFS|"* ]] || fail "C: the daemon was not started by its absolute path: $argv"
unmount_with_umount "$MNT_C" C

# ---- D: drop_privileges without the options safeimgfs would force: refused --

# mount.fuse3 mounts by itself and hands safeimgfs /dev/fd/N; without
# ro,nodev,nosuid,default_permissions on the line, every user could read the
# views, so the daemon must refuse to serve (mount.fuse3 then fails or leaves
# a dead mount that answers nothing).
out=$(timeout 30 mount -T "$FSTAB" "$MNT_D" 2>&1)
rc=$?
if mountpoint -q "$MNT_D"; then
    ls "$MNT_D" >/dev/null 2>&1 && fail "D: a drop_privileges mount without default_permissions serves: $out"
    umount -l "$MNT_D" 2>/dev/null
fi
note "D: mount -T exited $rc: $out"
note "D: drop_privileges without ro,nodev,nosuid,default_permissions is refused"

note "PASS"
exit 0
