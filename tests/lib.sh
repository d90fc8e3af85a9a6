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

declare -A _MOUNT_PID=() _MOUNT_LOG=()
_MOUNTS=()
_NLOG=0

# ---- results ---------------------------------------------------------------

skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

# fail MSG: report, show the daemon logs, exit 1 (the EXIT trap cleans up).
fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    local m
    for m in "${_MOUNTS[@]}"; do
        if [ -s "${_MOUNT_LOG[$m]}" ]; then
            echo "---- daemon log for $m (last 40 lines) ----" >&2
            tail -n 40 "${_MOUNT_LOG[$m]}" >&2
        fi
    done
    exit 1
}

# note MSG: progress output.
note() {
    echo "$TEST_NAME: $*"
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

# _alive PID: the process exists and is not a zombie.
_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}
_dead() { ! _alive "$1"; }

# _children PID: pids whose parent is PID (a daemon's sandboxed unlock helpers).
_children() {
    local f pp
    for f in /proc/[0-9]*/stat; do
        pp=$(sed 's/.*) . \([0-9]*\) .*/\1/' "$f" 2>/dev/null) || continue
        [ "$pp" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
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

# run_gen GENERATOR ARGS...: run tests/gen/GENERATOR, failing the test on error.
run_gen() {
    local g=$1; shift
    local out
    out=$("$GEN/$g" "$@" 2>&1) || fail "generator $g $* failed: $out"
}

# ---- the mount -------------------------------------------------------------

_status_readable() {
    "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' \
        "$1/.safeimgfs/status.json" 2>/dev/null
}

_mount_ready() {   # MNT PID
    _alive "$2" || return 0          # stop polling: the daemon died
    mountpoint -q "$1" && _status_readable "$1"
}

# mount_store STORE MNT [OPTS]: start "$SAFEIMGFS -f [-o OPTS] STORE MNT" in the
# background (log in $SCRATCH), wait (<= 60 s) until MNT is mounted and its
# status.json parses. Sets MOUNT_PID. Must be called in the test's own shell
# (not in $(...)), so that umount_store can collect the exit status.
mount_store() {
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
    _MOUNT_PID[$mnt]=$MOUNT_PID
    _MOUNT_LOG[$mnt]=$log
    _MOUNTS+=("$mnt")
    poll_until 60 _mount_ready "$mnt" "$MOUNT_PID" ||
        fail "mount of $store on $mnt not ready within 60 s"
    _alive "$MOUNT_PID" || fail "safeimgfs exited during mount (see log)"
}

# mount_pid MNT
mount_pid() {
    local mnt
    mnt=$(cd "$1" && pwd -P)
    echo "${_MOUNT_PID[$mnt]:-}"
}

# wait_daemon_exit PID [SECONDS]: wait for a daemon started by mount_store to
# exit; set DAEMON_STATUS to its exit status. Returns 1 on timeout.
wait_daemon_exit() {
    local pid=$1 limit=${2:-30}
    poll_until "$limit" _dead "$pid" || return 1
    wait "$pid" 2>/dev/null
    DAEMON_STATUS=$?
    return 0
}

# umount_store MNT: fusermount3 -u, then wait (<= 30 s) for the daemon to exit.
# Sets DAEMON_STATUS (fails the test if the daemon does not exit).
umount_store() {
    local mnt pid
    mnt=$(cd "$1" && pwd -P)
    pid=${_MOUNT_PID[$mnt]:-}
    fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
    [ -n "$pid" ] || return 0
    wait_daemon_exit "$pid" 30 || fail "daemon $pid still running 30 s after fusermount3 -u"
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
    "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for im in doc["images"]:
    if im["name"] == sys.argv[2]:
        v = im.get(sys.argv[3], "<missing field>")
        print("null" if v is None else v)
        sys.exit(0)
sys.exit(1)
EOF
}

_verdicts_done() {   # MNT MIN_IMAGES
    "$PYTHON" - "$1/.safeimgfs/status.json" "$2" <<'EOF' 2>/dev/null
import json, sys
doc = json.load(open(sys.argv[1]))
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
    local rc=$? m pid kids k
    trap - EXIT INT TERM HUP
    for m in "${_MOUNTS[@]}"; do
        pid=${_MOUNT_PID[$m]}
        kids=
        _alive "$pid" && kids=$(_children "$pid")
        if mountpoint -q "$m" 2>/dev/null; then
            fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
        fi
        if _alive "$pid"; then
            poll_until 5 _dead "$pid" || kill -TERM "$pid" 2>/dev/null
            poll_until 5 _dead "$pid" || kill -KILL "$pid" 2>/dev/null
        fi
        for k in $kids; do
            _alive "$k" && kill -KILL "$k" 2>/dev/null
        done
        wait "$pid" 2>/dev/null
    done
    if [ "${KEEP_SCRATCH:-0}" = 1 ]; then
        echo "$TEST_NAME: scratch kept in $SCRATCH"
    elif [ -n "${SCRATCH:-}" ] && [ -d "$SCRATCH" ]; then
        rm -rf --one-file-system "$SCRATCH"
    fi
    exit "$rc"
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/safeimgfs-test.XXXXXX") || {
    echo "$TEST_NAME: cannot make a scratch directory" >&2
    exit 99
}
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP
