#!/bin/bash
# Integration test: who may read the views (-o uid=,gid=,umask=, allow_other).
#
# Test accounts (removed on exit): a group G, a view owner O, a member of G
# by a supplementary group (M) and one by its primary group (P), and a user
# in neither (N); all but P have their own primary group G0. Commands run as
# them through setpriv(1) with their real and effective ids and groups.
# One accepted LUKS2 image, mounted four times by root:
#   A. no options: only the mounting user (root) gets in; O, M, N cannot even
#      stat the mount point (EACCES); views 0440 root:root, directories 0550;
#   B. allow_other,uid=O,gid=G,umask=0227: view and status.json 0440 O:G,
#      directories 0550 O:G; O, M and P read the view (content = plaintext)
#      and status.json; N gets EACCES (it cannot search the root);
#   C. allow_other,gid=G (by name),umask=0226: directories 0551, so N can stat the view
#      and status.json but gets EACCES on opening them (the kernel enforces
#      the files' own mode); M reads them;
#   D. allow_other,umask=0222: view and status.json 0444, directories 0555,
#      owned by root; everybody reads (content = plaintext).
# Every time: /proc/self/mountinfo lists default_permissions among the super
# options (and allow_other exactly when given); opening the view or
# status.json for writing, and creating a file, fail with EROFS or EACCES for
# root and every test user; the daemon exits 0 after fusermount3 -u.
#   E. uid=/gid= naming no user or group (or not a number): exit 2, no mount.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
[ "$(id -u)" -eq 0 ] || skip "needs root to create test users"
need_tool useradd userdel groupadd groupdel setpriv getent timeout cryptsetup sha256sum
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT"
chmod 700 "$KEYS" "$STORE" "$PLAIN"
# The test users must reach the mount point (and nothing else in here).
chmod 711 "$SCRATCH"
chmod 755 "$MNT"

# ---- test accounts ------------------------------------------------------------

SUF=$$
G=sif-g$SUF G0=sif-h$SUF
O=sif-o$SUF M=sif-m$SUF P=sif-p$SUF N=sif-n$SUF
MADE_USERS=() MADE_GROUPS=()
remove_accounts() {
    local a
    for a in "${MADE_USERS[@]}"; do
        userdel "$a" 2>/dev/null || echo "$TEST_NAME: cannot remove test user $a" >&2
    done
    for a in "${MADE_GROUPS[@]}"; do
        groupdel "$a" 2>/dev/null || echo "$TEST_NAME: cannot remove test group $a" >&2
    done
}
at_exit remove_accounts

for g in "$G" "$G0"; do
    ! getent group "$g" >/dev/null || fail "group $g exists already"
    groupadd "$g" || skip "groupadd $g failed"
    MADE_GROUPS=("$g" "${MADE_GROUPS[@]}")
done
add_user() {   # NAME USERADD-ARGS...
    ! getent passwd "$1" >/dev/null || fail "user $1 exists already"
    useradd -M -N -d / -s /usr/sbin/nologin "${@:2}" "$1" || skip "useradd $1 failed"
    MADE_USERS+=("$1")
}
add_user "$O" -g "$G0"
add_user "$M" -g "$G0" -G "$G"
add_user "$P" -g "$G"
add_user "$N" -g "$G0"
GID=$(getent group "$G" | cut -d: -f3)
OUID=$(id -u "$O")
# setpriv --init-groups really gives M its supplementary group.
[[ " $(run_as "$M" id -G) " == *" $GID "* ]] || fail "setpriv does not give $M the group $G: $(run_as "$M" id -G)"
[[ " $(run_as "$N" id -G) " != *" $GID "* ]] || fail "$N is in group $G"
assert_eq OK "$(errno_as "$N" 'os.stat(a[0])' "$MNT")" "stat of the (unmounted) mount point as $N"
note "accounts: group $G ($GID), owner $O ($OUID), members $M $P, non-member $N"

# ---- the image ----------------------------------------------------------------

write_key "$KEYS/a.img.key" access-pass
run_gen luks-reencrypt.sh --size-kib 1024 "$STORE" a.img "$KEYS/a.img.key" "$PLAIN"
WANT=$(sha256_of "$PLAIN/a.img.plain")
V=$MNT/a.img
S=$MNT/.safeimgfs/status.json

# ---- helpers --------------------------------------------------------------------

# reads_ok USER: USER reads the view (content right) and status.json (parses,
# lists a.img accepted).
reads_ok() {
    local h
    h=$(run_as "$1" sha256sum "$V" 2>&1) || fail "$1 cannot read the view: $h"
    assert_eq "$WANT" "${h%% *}" "sha256 of the view read as $1"
    h=$(run_as "$1" "$PYTHON" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print(" ".join(im["name"] + "=" + im["state"] for im in doc["images"]))' "$S" 2>&1) ||
        fail "$1 cannot read status.json: $h"
    assert_eq "a.img=accepted" "$h" "status.json read as $1"
}

# denied USER WHAT EXPR ARG: errno_of EXPR as USER must be EACCES.
denied() {
    assert_eq EACCES "$(errno_as "$1" "$3" "$4")" "$2 as $1"
}

# no_writes: opening for writing and creating fail with EROFS or EACCES for
# root and every test user.
no_writes() {
    local u r what
    for u in root "$O" "$M" "$P" "$N"; do
        for what in 'os.open(a[0], os.O_WRONLY)|V' 'os.open(a[0], os.O_RDWR)|V' \
            'os.open(a[0], os.O_WRONLY | os.O_TRUNC)|V' 'os.open(a[0], os.O_WRONLY)|S' \
            'os.open(a[0] + "/new.img", os.O_WRONLY | os.O_CREAT, 0o644)|M'; do
            local expr=${what%|*} arg
            case ${what##*|} in V) arg=$V ;; S) arg=$S ;; M) arg=$MNT ;; esac
            if [ "$u" = root ]; then r=$(errno_of "$expr" "$arg"); else r=$(errno_as "$u" "$expr" "$arg"); fi
            case $r in EROFS|EACCES) ;; *) fail "$expr on $arg as $u: expected EROFS or EACCES, got $r" ;; esac
        done
    done
}

# superopts_ok ALLOW_OTHER(0/1): default_permissions always, allow_other as given.
superopts_ok() {
    local o
    o=$(mount_superopts "$MNT") || fail "no mountinfo line for $MNT"
    [[ ,$o, == *,default_permissions,* ]] || fail "default_permissions not among the super options: $o"
    if [ "$1" = 1 ]; then
        [[ ,$o, == *,allow_other,* ]] || fail "allow_other not among the super options: $o"
    else
        [[ ,$o, != *,allow_other,* ]] || fail "allow_other among the super options without -o allow_other: $o"
    fi
}

modes() {   # the mode, uid and gid of the root, .safeimgfs, the view, status.json
    stat -c '%a %u %g' "$MNT" "$MNT/.safeimgfs" "$V" "$S" | tr '\n' '/' | sed 's|/$||'
}

mount_with() {   # OPTS
    mount_store "$STORE" "$MNT" "$1"
    wait_verdicts "$MNT" 1
    assert_eq accepted "$(status_field "$MNT" a.img state)" "a.img state ($1)"
}

unmount() {
    umount_store "$MNT"
    assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
}

# ---- A. without allow_other -------------------------------------------------------

mount_with "keydir=$KEYS"
superopts_ok 0
assert_eq "550 0 0/550 0 0/440 0 0/440 0 0" "$(modes)" "modes and owners without options"
assert_eq "$WANT" "$(sha256_of "$V")" "sha256 of the view read as root"
for u in "$O" "$M" "$N"; do
    denied "$u" "stat of the mount point" 'os.stat(a[0])' "$MNT"
    denied "$u" "open of the view" 'open(a[0], "rb")' "$V"
    denied "$u" "open of status.json" 'open(a[0], "rb")' "$S"
done
no_writes
unmount
note "A: without allow_other only root gets in"

# ---- B. allow_other, owner and group, umask 0227 -----------------------------------

mount_with "keydir=$KEYS,allow_other,uid=$OUID,gid=$GID,umask=0227"
superopts_ok 1
assert_eq "550 $OUID $GID/550 $OUID $GID/440 $OUID $GID/440 $OUID $GID" "$(modes)" \
    "modes and owners with uid=,gid=,umask=0227"
for u in "$O" "$M" "$P"; do
    reads_ok "$u"
done
assert_eq OK "$(errno_as "$N" 'os.stat(a[0])' "$MNT")" "stat of the mount point (0550) as $N"
denied "$N" "stat of the view" 'os.stat(a[0])' "$V"
denied "$N" "open of the view" 'open(a[0], "rb")' "$V"
denied "$N" "readdir of the root" 'os.listdir(a[0])' "$MNT"
denied "$N" "open of status.json" 'open(a[0], "rb")' "$S"
no_writes
unmount
note "B: owner and group read, others cannot"

# ---- C. allow_other, group, umask 0226: the files' own mode decides -----------------

mount_with "keydir=$KEYS,allow_other,gid=$G,umask=0226"
superopts_ok 1
assert_eq "551 0 $GID/551 0 $GID/440 0 $GID/440 0 $GID" "$(modes)" "modes and owners with gid=,umask=0226"
reads_ok "$M"
assert_eq OK "$(errno_as "$N" 'os.stat(a[0])' "$V")" "stat of the view as $N (root 0551)"
assert_eq OK "$(errno_as "$N" 'os.stat(a[0])' "$S")" "stat of status.json as $N (.safeimgfs 0551)"
denied "$N" "open of the view (0440)" 'open(a[0], "rb")' "$V"
denied "$N" "open of status.json (0440)" 'open(a[0], "rb")' "$S"
denied "$O" "open of the view (0440, not the owner, not in the group)" 'open(a[0], "rb")' "$V"
no_writes
unmount
note "C: the kernel enforces the views' mode (group given by name)"

# ---- D. allow_other, umask 0222: everybody reads -------------------------------------

mount_with "keydir=$KEYS,allow_other,umask=0222"
superopts_ok 1
assert_eq "555 0 0/555 0 0/444 0 0/444 0 0" "$(modes)" "modes and owners with umask=0222"
for u in "$O" "$M" "$P" "$N"; do
    reads_ok "$u"
done
no_writes
unmount
note "D: umask=0222 lets everybody read"

# ---- E. owners that do not exist: no mount ------------------------------------------

for opt in "uid=sif-nobody$SUF" "gid=sif-nogroup$SUF" "uid=12x"; do
    out=$(timeout 20 "$SAFEIMGFS" "$STORE" "$MNT" -f -o "keydir=$KEYS,$opt" 2>&1)
    rc=$?
    [ "$rc" -eq 2 ] || fail "-o $opt: exit status $rc, expected 2 ($out)"
    case $out in *"${opt%%=*}=${opt#*=}: no such"*) ;; *) fail "-o $opt: message does not name it: $out" ;; esac
    mountpoint -q "$MNT" && fail "-o $opt: mounted anyway"
done
note "E: unknown user and group names are refused"

echo "PASS: $TEST_NAME"
exit 0
