# shellcheck shell=bash
# Common code for the safeimgfs integration tests (bash; sourced, never run).
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip.
# Environment:
#   SAFEIMGFS        the daemon (default ./safeimgfs)
#   SAFEIMG_INSPECT  the inspector (default ./safeimg-inspect)
#   top_srcdir, srcdir  set by automake; defaulted from this file's location
#   TMPDIR           where the per-test scratch directory is made
#   KEEP_SCRATCH=1   keep the scratch directory (and daemon logs) after the test
#   SAFEIMGFS_DEBUG=1  start the daemon with -d as well
#
# Every test gets $SCRATCH (removed on exit) and $GEN (the generators).
# mount_store starts the daemon in the foreground (-f) as a background job and
# polls until the mount is usable; nothing here sleeps without polling for a
# condition, and every poll has a deadline.

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${srcdir:=$TESTS_DIR}"
: "${top_srcdir:=$(cd "$TESTS_DIR/.." && pwd)}"
: "${SAFEIMGFS:=./safeimgfs}"
: "${SAFEIMG_INSPECT:=./safeimg-inspect}"
GEN="$TESTS_DIR/gen"
PYTHON=/usr/bin/python3
TEST_NAME=${0##*/}
POLL_STEP=0.05

declare -A _MOUNT_PID=()   # mountpoint -> pid of its latest daemon
_MOUNTS=()                 # one "PID:STARTTIME|mountpoint|log" record per daemon started
_NLOG=0

# ---- results ---------------------------------------------------------------

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

# fail MSG: report, show the daemon logs, exit 1 (the EXIT trap cleans up).
fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    local rec pid mnt log
    for rec in "${_MOUNTS[@]}"; do
        IFS='|' read -r pid mnt log <<<"$rec"
        if [ -s "$log" ]; then
            echo "---- log of daemon ${pid%%:*} on $mnt (last 40 lines) ----" >&2
            tail -n 40 "$log" >&2
        fi
    done
    exit 1
}

# note MSG: progress output.
note() {
    local ms=$((($(_now_us) - _T0) / 1000))
    printf '%s: [%d.%03ds] %s\n' "$TEST_NAME" $((ms / 1000)) $((ms % 1000)) "$*"
}

need_tool() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "missing tool: $t"
    done
}

need_root_fuse() {
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    command -v fusermount3 >/dev/null 2>&1 || skip "no fusermount3"
    command -v mountpoint >/dev/null 2>&1 || skip "no mountpoint(1)"
    # Opening /dev/fuse is what mounting needs (root, or a setuid fusermount3).
    if [ "$(id -u)" -ne 0 ] && [ ! -u "$(command -v fusermount3)" ]; then
        skip "not root and fusermount3 is not setuid"
    fi
    { : <>/dev/fuse; } 2>/dev/null || [ "$(id -u)" -ne 0 ] || skip "cannot open /dev/fuse"
}

# need_prog PATH...: the programs under test must exist (a missing build is a failure).
need_prog() {
    local p
    for p in "$@"; do
        [ -x "$p" ] || fail "program not found or not executable: $p (set SAFEIMGFS / SAFEIMG_INSPECT)"
    done
}

need_python_crypto() {
    [ -x "$PYTHON" ] || skip "no $PYTHON"
    "$PYTHON" -c 'import cryptography' 2>/dev/null || skip "python3-cryptography missing"
}

# ---- small helpers ---------------------------------------------------------

assert_eq() {   # assert_eq EXPECTED ACTUAL [WHAT]
    [ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

sha256_of() {
    local s
    s=$(sha256sum <"$1") || return 1
    echo "${s%% *}"
}

_now_us() {
    local t=${EPOCHREALTIME/[.,]/}
    echo "${t#0}"
}

# poll_until SECONDS CMD...: run CMD every $POLL_STEP s until it succeeds;
# return 1 if it has not succeeded within SECONDS.
poll_until() {
    local limit=$1; shift
    local deadline=$(($(_now_us) + limit * 1000000))
    while :; do
        "$@" && return 0
        [ "$(_now_us)" -lt "$deadline" ] || return 1
        sleep "$POLL_STEP"
    done
}

# elapsed_ms START_US: milliseconds since _now_us returned START_US.
elapsed_ms() {
    echo $((($(_now_us) - $1) / 1000))
}

# Processes are named by "PID:STARTTIME" (field 22 of /proc/PID/stat) so that
# a recycled pid is never mistaken for (or killed as) one of ours.
_procinfo() {   # _procinfo PID: print "STATE PPID STARTTIME"
    local s a
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    read -ra a <<<"$s"
    [ ${#a[@]} -ge 20 ] || return 1
    echo "${a[0]} ${a[1]} ${a[19]}"
}

_ident() {   # _ident PID: print PID:STARTTIME
    local i
    i=$(_procinfo "$1") || return 1
    echo "$1:${i##* }"
}

# _alive ID: the process (PID or PID:STARTTIME) exists and is not a zombie.
_alive() {
    local i st pp start
    i=$(_procinfo "${1%%:*}") || return 1
    read -r st pp start <<<"$i"
    [ "$st" != Z ] || return 1
    [[ $1 != *:* ]] || [ "$start" = "${1#*:}" ]
}
_dead() { ! _alive "$1"; }

# _descendants PID: the idents of all processes below PID (a daemon's unlock
# helpers and their workers), to be killed if the daemon itself has to be.
_descendants() {
    local f p s a
    local -A parent=() start=()
    for f in /proc/[0-9]*; do
        p=${f#/proc/}
        { read -r s <"$f/stat"; } 2>/dev/null || continue
        s=${s##*) }
        read -ra a <<<"$s"
        parent[$p]=${a[1]} start[$p]=${a[19]}
    done
    local -a todo=("$1")
    while [ ${#todo[@]} -gt 0 ]; do
        local cur=${todo[0]}
        todo=("${todo[@]:1}")
        for p in "${!parent[@]}"; do
            if [ "${parent[$p]}" = "$cur" ]; then
                echo "$p:${start[$p]}"
                todo+=("$p")
            fi
        done
    done
}

# _kill SIG ID: signal the process only if it is still the same process.
_kill() {
    _alive "$2" && kill "-$1" "${2%%:*}" 2>/dev/null
}

# errno_of PYTHON-EXPR [ARG...]: evaluate an expression with os, errno and
# a = [ARG...] available; print "OK" if it raises nothing, else the errno name
# (EROFS, ENOENT, ...).
errno_of() {
    "$PYTHON" - "$@" <<'EOF'
import errno, os, sys
a = sys.argv[2:]
try:
    eval(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# write_key FILE PASSPHRASE [MODE]: key file holding exactly PASSPHRASE.
write_key() {
    printf '%s' "$2" >"$1" && chmod "${3:-600}" "$1" || fail "cannot write key $1"
}

# The generators' own decrypt-and-compare step costs CPU that the tests repeat
# anyway (the daemon's view is compared with the plaintext): skip it unless
# GEN_VERIFY=1; a test that sees a mismatch runs the independent decryptor
# itself (independent_check) to say which side is wrong.
export GEN_VERIFY=${GEN_VERIFY:-0}

# independent_check IMAGE KEYFILE PLAIN [VIEW]: decrypt IMAGE with
# tests/gen/luks-crypt.py (python3-cryptography, volume key from cryptsetup) and
# print how it compares with PLAIN and VIEW.
independent_check() {
    local out="$SCRATCH/independent.$$" pass="$SCRATCH/independent.pass"
    "$PYTHON" -c 'import sys; b = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(b[:-1] if b.endswith(b"\n") else b)' "$2" "$pass"
    if ! "$PYTHON" "$GEN/luks-crypt.py" decrypt "$1" "$out" --key-file "$pass" >/dev/null 2>&1; then
        echo "independent decryptor failed on $1"
        return
    fi
    if cmp -s "$out" "$3"; then echo "independent decryptor agrees with the expected plaintext"
    else echo "independent decryptor DISAGREES with the expected plaintext (generator problem)"; fi
    if [ -n "${4:-}" ]; then
        cmp "$out" "$4" 2>&1 | head -n 1 | sed 's/^/view vs independent: /'
    fi
    rm -f "$out" "$pass"
}

# run_gen GENERATOR ARGS...: run tests/gen/GENERATOR, failing the test on error.
run_gen() {
    local g=$1; shift
    local out
    out=$("$GEN/$g" "$@" 2>&1) || fail "generator $g $* failed: $out"
}

# gen_bg GENERATOR ARGS...: start tests/gen/GENERATOR in the background (the
# machine has several cores and image generation dominates a test's run time);
# gen_wait waits for all of them and fails the test if any failed.
_GEN_JOBS=()
_NGEN=0
gen_bg() {
    local log="$SCRATCH/gen.$((++_NGEN)).log"
    "$GEN/$1" "${@:2}" >"$log" 2>&1 &
    _GEN_JOBS+=("$(_ident $! || echo "$!:gone")|$log|$*")
}

gen_wait() {
    local rec id log what bad=""
    for rec in "${_GEN_JOBS[@]}"; do
        IFS='|' read -r id log what <<<"$rec"
        wait "${id%%:*}" || bad+="
  $what: $(cat "$log")"
    done
    _GEN_JOBS=()
    [ -z "$bad" ] || fail "generators failed:$bad"
}

# ---- the mount -------------------------------------------------------------

# The helpers parse status.json leniently (undecodable bytes replaced, raw
# control characters allowed) so that one badly encoded name cannot stall
# them; strict JSON is asserted by the tests themselves (integ-views, integ-names).
_STATUS_LOAD='json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "replace"), strict=False)'

_status_readable() {
    "$PYTHON" -c "import json,sys; $_STATUS_LOAD" "$1/.safeimgfs/status.json" 2>/dev/null
}

_mount_ready() {   # MNT PID
    _alive "$2" || return 0          # stop polling: the daemon died
    mountpoint -q "$1" && _status_readable "$1"
}

# start_daemon STORE MNT [OPTS]: start "$SAFEIMGFS -f [-o OPTS] STORE MNT" in
# the background (log in $SCRATCH) and wait (<= 60 s) until MNT is mounted and
# its status.json parses (return 0), or the daemon has exited (return 1, with
# DAEMON_STATUS set). Sets MOUNT_PID (the daemon's pid) and MOUNT_ID (its
# PID:STARTTIME, for wait_daemon_exit and _kill). Must be called in the test's
# own shell (not in $(...)), so that the exit status can be collected.
start_daemon() {
    local store=$1 mnt=$2 opts=${3:-}
    mkdir -p "$mnt" || fail "cannot make $mnt"
    mnt=$(cd "$mnt" && pwd -P)
    local log="$SCRATCH/daemon.$((++_NLOG)).log"
    local args=(-f)
    [ "${SAFEIMGFS_DEBUG:-0}" = 1 ] && args+=(-d)
    [ -n "$opts" ] && args+=(-o "$opts")
    # A non-interactive shell starts background jobs with SIGINT ignored, and
    # libfuse keeps an ignored disposition: reset it so SIGINT can be tested.
    env --default-signal=INT,QUIT,TERM,HUP "$SAFEIMGFS" "${args[@]}" "$store" "$mnt" \
        </dev/null >"$log" 2>&1 &
    MOUNT_PID=$!
    local id
    id=$(_ident "$MOUNT_PID") || id="$MOUNT_PID:gone"
    MOUNT_ID=$id
    DAEMON_LOG=$log
    _MOUNT_PID[$mnt]=$id
    _MOUNTS+=("$id|$mnt|$log")
    poll_until 60 _mount_ready "$mnt" "$id" ||
        fail "mount of $store on $mnt not ready within 60 s"
    if _dead "$id"; then
        wait "$MOUNT_PID" 2>/dev/null
        DAEMON_STATUS=$?
        return 1
    fi
    return 0
}

# mount_store STORE MNT [OPTS]: start_daemon, failing the test if the daemon
# exits instead of mounting.
mount_store() {
    start_daemon "$@" || fail "safeimgfs exited with status $DAEMON_STATUS instead of mounting $1 on $2"
}

# mount_id MNT: the PID:STARTTIME of the latest daemon mounted on MNT.
mount_id() {
    local mnt
    mnt=$(cd "$1" && pwd -P)
    echo "${_MOUNT_PID[$mnt]:-}"
}

# wait_daemon_exit ID [SECONDS]: wait for a daemon started by mount_store
# (ID = $MOUNT_ID) to exit; set DAEMON_STATUS to its exit status. Returns 1 on
# timeout.
wait_daemon_exit() {
    local id=$1 limit=${2:-30}
    poll_until "$limit" _dead "$id" || return 1
    wait "${id%%:*}" 2>/dev/null
    DAEMON_STATUS=$?
    return 0
}

# umount_store MNT: fusermount3 -u, then wait (<= 30 s) for the daemon to exit.
# Sets DAEMON_STATUS (fails the test if the daemon does not exit).
umount_store() {
    local mnt id
    mnt=$(cd "$1" && pwd -P)
    id=${_MOUNT_PID[$mnt]:-}
    fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
    [ -n "$id" ] || return 0
    wait_daemon_exit "$id" 30 || fail "daemon ${id%%:*} still running 30 s after fusermount3 -u"
}

status_json() {   # status_json MNT: print status.json
    cat "$1/.safeimgfs/status.json"
}

# status_field MNT NAME FIELD: print one field of NAME's status.json entry
# (strings raw, null as "null", numbers as digits). Exit 1 if NAME is absent.
status_field() {
    status_field_file "$1/.safeimgfs/status.json" "$2" "$3"
}

# status_field_file FILE NAME FIELD: the same, from a saved status.json.
status_field_file() {
    "$PYTHON" - "$1" "$2" "$3" <<EOF
import json, sys
doc = $_STATUS_LOAD
for im in doc["images"]:
    if im["name"] == sys.argv[2]:
        v = im.get(sys.argv[3], "<missing field>")
        print("null" if v is None else v)
        sys.exit(0)
sys.exit(1)
EOF
}

_verdicts_done() {   # MNT MIN_IMAGES
    "$PYTHON" - "$1/.safeimgfs/status.json" "$2" <<EOF 2>/dev/null
import json, sys
doc = $_STATUS_LOAD
ims = doc["images"]
sys.exit(0 if len(ims) >= int(sys.argv[2]) and
         all(i["state"] != "pending" for i in ims) else 1)
EOF
}

# wait_verdicts MNT [MIN_IMAGES [SECONDS]]: poll status.json until it lists at
# least MIN_IMAGES images and none is pending (default deadline 60 s).
wait_verdicts() {
    poll_until "${3:-60}" _verdicts_done "$1" "${2:-0}" || {
        status_json "$1" >&2
        fail "images still pending after ${3:-60} s"
    }
}

# ---- scratch directory and cleanup -----------------------------------------

_cleanup() {
    local rc=$? rec id mnt log kids k
    trap - EXIT INT TERM HUP
    for rec in "${_GEN_JOBS[@]}"; do
        id=${rec%%|*}
        _kill TERM "$id"
        wait "${id%%:*}" 2>/dev/null
    done
    for rec in "${_MOUNTS[@]}"; do
        IFS='|' read -r id mnt log <<<"$rec"
        kids=
        _alive "$id" && kids=$(_descendants "${id%%:*}")
        if mountpoint -q "$mnt" 2>/dev/null; then
            fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
        fi
        if _alive "$id"; then
            poll_until 5 _dead "$id" || _kill TERM "$id"
            poll_until 5 _dead "$id" || _kill KILL "$id"
        fi
        for k in $kids; do
            _kill KILL "$k"
        done
        wait "${id%%:*}" 2>/dev/null
    done
    if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
        echo "$TEST_NAME: scratch kept in $SCRATCH"
    elif [ -n "${SCRATCH:-}" ] && [ -d "$SCRATCH" ]; then
        rm -rf --one-file-system "$SCRATCH"
    fi
    exit "$rc"
}

_T0=$(_now_us)
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/safeimgfs-test.XXXXXX") || {
    echo "$TEST_NAME: cannot make a scratch directory" >&2
    exit 99
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- store-change helpers (H3) ----------------------------------------------
# For tests of a store that changes under a live mount (integ-store.sh) and of
# access control (integ-access.sh): exit hooks that run before _cleanup,
# readers that hold a view open across a change, status.json queries for the
# top-level fields, and running commands as another user.

_H3_EXIT_HOOKS=()
_H3_HOLDERS=()   # "PID:STARTTIME|dir" of every hold_view reader

# at_exit CMD: eval CMD when the test exits, in the order registered, before
# _cleanup unmounts and removes $SCRATCH; the test's exit status is kept.
# (_cleanup is still what the trap ends with, and it resets the traps.)
at_exit() {
    _H3_EXIT_HOOKS+=("$1")
    trap _h3_exit EXIT
}

_h3_exit() {
    local rc=$? h
    for h in "${_H3_EXIT_HOOKS[@]}"; do
        eval "$h" || echo "$TEST_NAME: exit hook failed: $h" >&2
    done
    (exit "$rc")
    _cleanup
}

# status_top MNT FIELD: print a top-level field of status.json (strings raw,
# null as "null"); "<missing field>" when absent.
status_top() {
    "$PYTHON" - "$1/.safeimgfs/status.json" "$2" <<EOF
import json, sys
doc = $_STATUS_LOAD
v = doc.get(sys.argv[2], "<missing field>")
print("null" if v is None else v)
EOF
}

# status_names MNT: the names in status.json, one a line, sorted (C locale).
status_names() {
    "$PYTHON" - "$1/.safeimgfs/status.json" <<EOF
import json, sys
doc = $_STATUS_LOAD
print("\n".join(sorted((im["name"] for im in doc["images"]), key=lambda s: s.encode())))
EOF
}

# listed_names MNT: readdir of MNT without .safeimgfs, one a line, sorted.
listed_names() {
    "$PYTHON" - "$1" <<'EOF'
import os, sys
print("\n".join(sorted((n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs"),
                       key=lambda s: s.encode("utf-8", "surrogateescape"))))
EOF
}

# status_responsive MNT: status.json can be read and parsed within 10 s (a
# daemon that deadlocked would make every later check hang instead of fail).
status_responsive() {
    timeout -k 2 10 "$PYTHON" -c "import json,sys; $_STATUS_LOAD" \
        "$1/.safeimgfs/status.json" 2>/dev/null ||
        fail "status.json of $1 not readable within 10 s: is the daemon stuck?"
}

# mount_superopts MNT: the super options of the mount on MNT (the last field
# of its /proc/self/mountinfo line; the newest mount if several are stacked).
mount_superopts() {
    "$PYTHON" - "$1" <<'EOF'
import os, re, sys
want = os.path.realpath(sys.argv[1])
unesc = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
found = None
for line in open("/proc/self/mountinfo"):
    pre, _, post = line.rstrip("\n").partition(" - ")
    f = pre.split(" ")
    if len(f) >= 5 and unesc(f[4]) == want:
        found = post.split(" ")[-1]
print(found or "")
sys.exit(0 if found else 1)
EOF
}

# hold_view TAG VIEW PLAIN: start a background reader that opens VIEW, checks
# that all of it reads as PLAIN, then keeps reading pieces of it (each compared
# with PLAIN at that offset) until a read fails. Returns once the view is open
# and checked (fails the test if that does not happen within 20 s). Then:
#   hold_changing TAG   tell it the blob is about to change: from now on EIO
#                       is the expected outcome, and it must come within 20 s;
#   hold_result TAG     wait for it, set HOLD_REPORT to its report; status 0
#                       if EIO came after hold_changing and no read ever
#                       returned bytes other than PLAIN's (call it in the
#                       test's own shell, not in $(...): it waits for a job).
# Short reads are allowed (a prefix of PLAIN's bytes at that offset); a read
# error before hold_changing, any errno but EIO, or no error within the
# deadline is a failure.
hold_view() {
    local dir="$SCRATCH/hold.$1"
    mkdir -p "$dir" || fail "cannot make $dir"
    rm -f "$dir/ready" "$dir/changing"
    [ ${#_H3_HOLDERS[@]} -gt 0 ] || at_exit _h3_stop_holders
    "$PYTHON" - "$2" "$3" "$dir" >"$dir/report" 2>&1 <<'EOF' &
import errno, os, random, sys, time
view, plain, d = sys.argv[1:4]
ref = open(plain, "rb").read()
size = len(ref)
DEADLINE_S = 20        # after hold_changing, as the tests' other polls
CAP_S = 600            # the whole life of the reader, change or not
def out(code, msg):
    print(msg)
    sys.stdout.flush()
    os._exit(code)
def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))
t0 = time.monotonic()
try:
    fd = os.open(view, os.O_RDONLY)
    got = b""
    while len(got) < size:
        b = os.pread(fd, 1 << 20, len(got))
        if not b:
            break
        got += b
except OSError as e:
    out(4, "cannot open or read %s before the change: %s" % (view, name(e)))
if got != ref:
    out(3, "%s does not read as its plaintext before the change (%d bytes read, %d expected)" %
        (view, len(got), size))
open(os.path.join(d, "ready"), "w").close()
rnd = random.Random(size)
reads = short = 0
changing_at = None
while True:
    if changing_at is None and os.path.exists(os.path.join(d, "changing")):
        changing_at = time.monotonic()
    now = time.monotonic()
    if changing_at is not None and now - changing_at > DEADLINE_S:
        out(2, "no EIO within %d s of the change: %d reads (%d short) all returned the original plaintext" %
            (DEADLINE_S, reads, short))
    if now - t0 > CAP_S:
        out(7, "the change never came (reader gave up after %d s)" % CAP_S)
    off = rnd.randrange(0, size)
    ln = rnd.choice([1, 511, 4096, 65536, 131072, 1 << 20])
    try:
        b = os.pread(fd, ln, off)
    except OSError as e:
        if changing_at is None:
            out(5, "read failed with %s before the change (after %d reads)" % (name(e), reads))
        if e.errno != errno.EIO:
            out(6, "read failed with %s instead of EIO after the change (after %d reads)" % (name(e), reads))
        out(0, "EIO %.3f s after the change; %d earlier reads (%d short) all returned original plaintext" %
            (time.monotonic() - changing_at, reads, short))
    reads += 1
    if b != ref[off:off + len(b)]:
        out(3, "pread(off=%d, len=%d) returned %d bytes that are NOT the original plaintext at that offset%s" %
            (off, ln, len(b), "" if changing_at is None else " (after the change)"))
    if len(b) < min(ln, size - off):
        short += 1
    time.sleep(0.002)
EOF
    local id
    id=$(_ident $!) || id="$!:gone"
    _H3_HOLDERS+=("$id|$dir")
    poll_until 20 _h3_holder_ready "$dir" "$id" ||
        fail "reader of $2 not ready within 20 s: $(cat "$dir/report")"
    [ -e "$dir/ready" ] || fail "reader of $2 failed before the change: $(cat "$dir/report")"
}

_h3_holder_ready() {   # DIR ID: ready, or dead (stop polling)
    [ -e "$1/ready" ] || _dead "$2"
}

_h3_holder_id() {   # TAG: print the holder's ident
    local rec
    for rec in "${_H3_HOLDERS[@]}"; do
        [ "${rec#*|}" = "$SCRATCH/hold.$1" ] && echo "${rec%%|*}"
    done
}

hold_changing() {
    : >"$SCRATCH/hold.$1/changing" || fail "cannot signal reader $1"
}

hold_result() {   # TAG: sets HOLD_REPORT; call it in the test's own shell
    local id rc
    id=$(_h3_holder_id "$1")
    [ -n "$id" ] || fail "no reader called $1"
    poll_until 40 _dead "$id" || fail "reader $1 still running 40 s after the change"
    wait "${id%%:*}"
    rc=$?
    HOLD_REPORT=$(cat "$SCRATCH/hold.$1/report")
    return $rc
}

_h3_stop_holders() {
    local rec id
    for rec in "${_H3_HOLDERS[@]}"; do
        id=${rec%%|*}
        _kill KILL "$id"
        wait "${id%%:*}" 2>/dev/null
    done
    return 0
}

# run_as USER CMD...: run CMD as USER (real and effective uid and gid, and
# USER's supplementary groups), from /, killed after 60 s.
run_as() {
    local u=$1 uid gid
    shift
    uid=$(id -u "$u") && gid=$(id -g "$u") || fail "no user $u"
    (cd / && exec timeout -k 5 60 setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@")
}

# errno_as USER PYTHON-EXPR [ARG...]: errno_of, run as USER.
errno_as() {
    local u=$1
    shift
    run_as "$u" "$PYTHON" - "$@" <<'EOF'
import errno, os, sys
a = sys.argv[2:]
try:
    eval(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# ---- policy/audit helpers (H5) ----------------------------------------------
# For the tests of the policy file (integ-policy.sh) and of the audit log
# (integ-audit.sh): assertions that are collected instead of ending the
# test at the first (one run then shows every wrong verdict of a table of
# cases), programs that must refuse to start, status.json waits by name and
# generation, and a search of a file for key material.

_H5_PROBLEMS=()

# problem MSG: record a failed assertion and carry on; problems_end fails
# the test with every recorded one.
problem() {
    _H5_PROBLEMS+=("$*")
    echo "$TEST_NAME: PROBLEM: $*" >&2
}

# problems_end: fail the test if any problem was recorded.
problems_end() {
    [ ${#_H5_PROBLEMS[@]} -eq 0 ] && return 0
    fail "${#_H5_PROBLEMS[@]} problem(s):$(printf '\n  - %s' "${_H5_PROBLEMS[@]}")"
}

# daemon_refuses WANT_RC TEXT STORE MNT OPTS: "$SAFEIMGFS -f -o OPTS STORE
# MNT" must exit with status WANT_RC without mounting MNT, and its output
# must contain TEXT (a fixed string); each departure is a problem. Sets
# REFUSAL to the daemon's output.
daemon_refuses() {
    local want=$1 text=$2 store=$3 mnt=$4 opts=$5
    REFUSAL=
    if start_daemon "$store" "$mnt" "$opts"; then
        problem "safeimgfs -o $opts mounted $mnt (want exit status $want and '$text')"
        umount_store "$mnt"
        return 0
    fi
    REFUSAL=$(cat "$DAEMON_LOG")
    if mountpoint -q "$mnt"; then
        problem "safeimgfs -o $opts exited but left $mnt mounted"
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
    fi
    [ "$DAEMON_STATUS" = "$want" ] ||
        problem "safeimgfs -o $opts: exit status $DAEMON_STATUS (want $want); it said: $REFUSAL"
    grep -qF -- "$text" <<<"$REFUSAL" ||
        problem "safeimgfs -o $opts: its message does not contain '$text'; it said: $REFUSAL"
    return 0
}

# tool_refuses WANT_RC TEXT CMD...: CMD (killed after 60 s) must exit with
# WANT_RC and print TEXT (a fixed string, stdout or stderr); else a
# problem. Sets REFUSAL to its output.
tool_refuses() {
    local want=$1 text=$2 rc
    shift 2
    REFUSAL=$(timeout -k 5 60 "$@" 2>&1 </dev/null)
    rc=$?
    [ "$rc" = "$want" ] || problem "${*##*/}: exit status $rc (want $want); it said: $REFUSAL"
    grep -qF -- "$text" <<<"$REFUSAL" || problem "${*##*/}: its output does not contain '$text'; it said: $REFUSAL"
    return 0
}

# status_entry_is MNT NAME STATE [CHECK [GEN]]: NAME's status.json entry
# has this state (and check id, and generation); "-" for any. Exit 1 when
# it differs or NAME is not listed.
status_entry_is() {
    "$PYTHON" - "$1/.safeimgfs/status.json" "$2" "$3" "${4:--}" "${5:--}" <<EOF 2>/dev/null
import json, sys
doc = $_STATUS_LOAD
name, state, check, gen = sys.argv[2:6]
for im in doc["images"]:
    if im["name"] == name:
        sys.exit(0 if (state in ("-", im["state"]) and check in ("-", im.get("check")) and
                       (gen == "-" or im.get("generation") == int(gen))) else 1)
sys.exit(1)
EOF
}

# status_absent MNT NAME: status.json does not list NAME.
status_absent() {
    "$PYTHON" - "$1/.safeimgfs/status.json" "$2" <<EOF 2>/dev/null
import json, sys
doc = $_STATUS_LOAD
sys.exit(1 if any(im["name"] == sys.argv[2] for im in doc["images"]) else 0)
EOF
}

# volume_key IMAGE PASSFILE OUT: the volume key of a LUKS image, as binary,
# from cryptsetup (on a copy of the image: the blob under test is never
# opened read-write by anything but its generator). PASSFILE holds the
# exact passphrase. Fails the test if cryptsetup cannot give it.
volume_key() {
    local copy="$SCRATCH/vk-copy.$$" err
    cp "$1" "$copy" || fail "cannot copy $1"
    # cryptsetup 2.4 renamed --dump-master-key to --dump-volume-key.
    err=$(cryptsetup luksDump --dump-volume-key -q --key-file "$2" --volume-key-file "$3" "$copy" 2>&1 >/dev/null) ||
        err=$(cryptsetup luksDump --dump-master-key -q --key-file "$2" --master-key-file "$3" "$copy" 2>&1 >/dev/null) ||
        { rm -f "$copy"; fail "cannot dump the volume key of $1: $err"; }
    rm -f "$copy"
    [ -s "$3" ] || fail "empty volume key dumped from $1"
}

# secrets_absent FILE WHAT SECRET...: FILE must not contain any SECRET (a
# file holding key material: a key file, a passphrase, a volume key) in any
# form a log could carry it: its bytes (also minus one trailing newline, the
# key file rule); lower- or upper-case hex, also with spaces, colons or
# dashes between bytes (cryptsetup's dumps); base64 (with or without
# padding, standard or URL alphabet). Any 16 bytes of a longer secret count
# as well (half a volume key is a leak), as bytes or hex. A secret found is
# a problem naming WHAT and the form. Secrets shorter than 8 bytes are
# refused (a short one would match by chance).
secrets_absent() {
    local out
    out=$("$PYTHON" - "$@" <<'EOF'
import base64, re, sys
path, what, secrets = sys.argv[1], sys.argv[2], sys.argv[3:]
WINDOW = 16
data = open(path, "rb").read()
low = data.lower()
# the file with every byte separator a hex dump could use taken out
squeezed = re.sub(rb"[\s:\-]", b"", low)

def found(s):
    """The form in which secret s (bytes) appears in the file, or None."""
    parts = [s] + [s[i:i + WINDOW] for i in range(len(s) - WINDOW + 1)] if len(s) > WINDOW else [s]
    for p in parts:
        if p in data:
            return "bytes" if p == s else "bytes (16 of them)"
        h = p.hex().encode()
        if h in low or h in squeezed:
            return "hex" if p == s else "hex (16 bytes of it)"
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(s)
        if b in data or b.rstrip(b"=") in data:
            return "base64"
    return None

for sp in secrets:
    raw = open(sp, "rb").read()
    for s in dict.fromkeys((raw, raw[:-1] if raw.endswith(b"\n") else raw)):
        if len(s) < 8:
            print("%s: secret %s is too short to search for" % (what, sp))
            break
        form = found(s)
        if form:
            print("%s contains %s as %s" % (what, sp, form))
            break
EOF
) || fail "searching $1 for secrets failed"
    [ -z "$out" ] || problem "$out"
}
