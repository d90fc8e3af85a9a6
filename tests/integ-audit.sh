#!/bin/bash
# Integration test: the audit log (-o audit_log=FILE), one JSON object a line.
#
# Store, mounted with keydir= (each image has its own passphrase):
#   keep.img   LUKS2                        accepted, stays
#   gone.img   LUKS1 (key file ending in a newline)   accepted, then removed (rm)
#   repl.img   LUKS2                        accepted, then replaced (mv of another
#                                           image over it: generation 2)
#   wrong.img  LUKS2 whose key file holds another passphrase   rejected key.wrong
#   added.img  LUKS2, moved in after the mount (generation 1)
# After the changes have been decided (status.json) and logged, and the
# daemon unmounted, the log must hold, in order: a "mount" line naming the
# store first; one "verdict" line per inspection (as many as status.json's
# "inspections"), each with name, generation, file {size, inode, mtime} equal
# to the file inspected (its stat before the mount or the move), state,
# check, reason, a non-empty list of stages (an accepted LUKS image's include
# outer.format, outer.multiple, luks and inner, in that order) and
# inspect_ms, agreeing with status.json; an "added" line for added.img
# (generation 1), a "changed" line for repl.img (generation 1, the retired
# one; status.json then says 2, and the file is the new one), a "removed"
# line for gone.img (generation 1), each before the verdict that follows it
# and as many as status.json's "changes"; an "unmount" line last. Every
# "time" is RFC 3339 UTC with milliseconds.
# The log file is created with mode 0640 (under umask 022) and a second
# mount appends to it (the first mount's bytes unchanged, then a second
# mount ... unmount with four verdicts of generation 1).
# Neither the log nor the daemon's output contains key material: no
# passphrase, no key file (raw, hex, base64), no volume key (cryptsetup
# luksDump --dump-volume-key of each image).
# audit_log= in a directory that does not exist: the daemon exits 2, naming
# the path, mounts nothing and creates nothing.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup cmp timeout stat
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store STAGE=$SCRATCH/stage KEYS=$SCRATCH/keys SEC=$SCRATCH/secrets
PLAIN=$SCRATCH/plain MNT=$SCRATCH/mnt W=$SCRATCH/work
mkdir -p "$STORE" "$STAGE" "$KEYS" "$SEC" "$PLAIN" "$MNT" "$W"
chmod 700 "$KEYS" "$SEC"
LOG=$W/audit.log
STORE_REAL=$(cd "$STORE" && pwd -P)   # the daemon logs the store's real path
DEADLINE=20
# The log's mode is 0640 less the daemon's umask: make that the usual one.
umask 022

# SEC/NAME.pass: the exact passphrase of each image; KEYS/NAME.key: what the
# daemon is given (gone.img's with a trailing newline, which is not part of
# the passphrase; wrong.img's another passphrase).
for n in keep gone repl wrong added; do
    write_key "$SEC/$n.pass" "audit-$n-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
done
for n in keep repl added; do
    cp "$SEC/$n.pass" "$KEYS/$n.img.key" || fail "cannot write a key file"
done
{ cat "$SEC/gone.pass" && echo; } >"$KEYS/gone.img.key" || fail "cannot write a key file"
write_key "$KEYS/wrong.img.key" "audit-not-the-passphrase-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
chmod 600 "$KEYS"/*.key

gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" keep.img "$SEC/keep.pass" "$PLAIN"
gen_bg luks-reencrypt.sh --luks1 --size-kib 1024 "$STORE" gone.img "$SEC/gone.pass" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" repl.img "$SEC/repl.pass" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" wrong.img "$SEC/wrong.pass" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STAGE" added.img "$SEC/added.pass" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STAGE" repl.new "$SEC/repl.pass" "$PLAIN"
gen_wait
for f in keep.img gone.img repl.img wrong.img; do
    volume_key "$STORE/$f" "$SEC/${f%.img}.pass" "$SEC/$f.vk"
done
volume_key "$STAGE/added.img" "$SEC/added.pass" "$SEC/added.img.vk"
volume_key "$STAGE/repl.new" "$SEC/repl.pass" "$SEC/repl.new.vk"
SECRETS=("$SEC"/* "$KEYS"/*)
note "made the images; ${#SECRETS[@]} secrets to look for"

# facts FILE NAME=PATH@GEN...: the identity of each file as the log must give
# it, {"NAME": {"GEN": {"size", "inode", "mtime"}}}, mtime in the log's form.
facts() {
    local out=$1
    shift
    "$PYTHON" - "$out" "$@" <<'EOF' || fail "cannot stat the images"
import json, os, sys, time
out, facts = sys.argv[1], {}
for spec in sys.argv[2:]:
    name, rest = spec.split("=", 1)
    path, gen = rest.rsplit("@", 1)
    st = os.stat(path)
    ns = st.st_mtime_ns
    mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%03dZ" % (ns % 10**9 // 10**6)
    facts.setdefault(name, {})[gen] = {"size": st.st_size, "inode": st.st_ino, "mtime": mtime}
json.dump(facts, open(out, "w"))
EOF
}

# log_has FILE FROM EVENT COUNT [NAME [GEN]]: the log, from byte FROM on,
# has at least COUNT lines of EVENT (for NAME, of generation GEN).
log_has() {
    "$PYTHON" - "$@" <<'EOF' 2>/dev/null
import json, sys
path, start, event, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
name = sys.argv[5] if len(sys.argv) > 5 else None
gen = int(sys.argv[6]) if len(sys.argv) > 6 else None
n = 0
with open(path, "rb") as f:
    f.seek(start)
    for line in f.read().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("event") == event and name in (None, d.get("name")) and gen in (None, d.get("generation")):
            n += 1
sys.exit(0 if n >= count else 1)
EOF
}

wait_log() {   # FROM EVENT COUNT [NAME [GEN]]
    poll_until "$DEADLINE" log_has "$LOG" "$@" ||
        fail "the audit log has no $3 x '$2' line${4:+ for $4}${5:+ generation $5} within $DEADLINE s:
$(tail -c 3000 "$LOG" 2>/dev/null)"
}

wait_status() {   # NAME STATE CHECK GEN
    poll_until "$DEADLINE" status_entry_is "$MNT" "$@" ||
        fail "$1: not $2/$3 generation $4 within $DEADLINE s: $(status_json "$MNT")"
}

# The checker of one mount's part of the log (from byte FROM to the end):
#   check_audit.py LOG FROM STORE STATUS FACTS PHASE
# PHASE "changes": the first mount, with its changes; "again": the second.
cat >"$W/check_audit.py" <<'EOF'
import json, re, sys
path, start, store, stp, factsp, phase = sys.argv[1:7]
start = int(start)
errs = []
status = json.load(open(stp))
live = {i["name"]: i for i in status["images"]}
facts = json.load(open(factsp))
data = open(path, "rb").read()[start:]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
EVENTS = ("mount", "unmount", "verdict", "added", "changed", "removed")
if not data.endswith(b"\n"):
    errs.append("the log does not end with a newline")
ev = []
for i, line in enumerate(data.split(b"\n")[:-1], 1):
    try:
        d = json.loads(line)
    except ValueError as e:
        errs.append("line %d is not JSON (%s): %r" % (i, e, line[:200]))
        continue
    if not isinstance(d, dict):
        errs.append("line %d is not a JSON object: %r" % (i, line[:200]))
        continue
    if not isinstance(d.get("time"), str) or not TIME.match(d["time"]):
        errs.append("line %d: time %r is not RFC 3339 UTC with milliseconds" % (i, d.get("time")))
    if d.get("event") not in EVENTS:
        errs.append("line %d: unknown event %r" % (i, d.get("event")))
    d["_line"] = i
    ev.append(d)
if not ev:
    print("no lines in this part of the log")
    sys.exit()
for i, want in ((0, "mount"), (-1, "unmount")):
    e = ev[i]
    if e.get("event") != want or e.get("store") != store:
        errs.append("line %d is %s (store %r), want %s of store %s" % (e["_line"], e.get("event"), e.get("store"),
                                                                      want, store))
if sum(e.get("event") in ("mount", "unmount") for e in ev) != 2:
    errs.append("more than one mount or unmount line: %s" % [e["_line"] for e in ev if e.get("event") in ("mount", "unmount")])

def pos(event, name, gen=None):
    """Line indexes of an event about name (and generation)."""
    return [k for k, e in enumerate(ev) if e.get("event") == event and e.get("name") == name and
            (gen is None or e.get("generation") == gen)]

def same_file(e, name, gen, what):
    f = e.get("file")
    want = facts.get(name, {}).get(str(gen))
    if want is None:
        errs.append("%s: no file facts for %s generation %s" % (what, name, gen))
    elif f != want:
        errs.append("%s: file %s, want %s" % (what, f, want))

verdicts = [e for e in ev if e.get("event") == "verdict"]
seen = {}
for e in verdicts:
    what = "line %d (verdict of %s)" % (e["_line"], e.get("name"))
    for k, typ in (("name", str), ("generation", int), ("state", str), ("check", str), ("reason", str),
                   ("stages", list), ("inspect_ms", int), ("file", dict)):
        if not isinstance(e.get(k), typ) or isinstance(e.get(k), bool):
            errs.append("%s: %s is %r, not a %s" % (what, k, e.get(k), typ.__name__))
    if not isinstance(e.get("stages"), list) or not isinstance(e.get("generation"), int):
        continue
    key = (e["name"], e["generation"])
    seen[key] = seen.get(key, 0) + 1
    if not e["stages"] or not all(isinstance(s, str) and s for s in e["stages"]):
        errs.append("%s: stages %r" % (what, e["stages"]))
    if isinstance(e.get("inspect_ms"), int) and e["inspect_ms"] < 0:
        errs.append("%s: inspect_ms %d" % (what, e["inspect_ms"]))
    same_file(e, e["name"], e["generation"], what)
    if e.get("state") == "accepted":
        it = iter(e["stages"])
        if not all(s in it for s in ("outer.format", "outer.multiple", "luks", "inner")):
            errs.append("%s: accepted with stages %s (want outer.format, outer.multiple, luks, inner in order)" % (
                what, e["stages"]))
    # the verdict of the generation status.json shows says what status.json says
    im = live.get(e["name"])
    if im is not None and im.get("generation") == e["generation"]:
        for k in ("state", "check", "reason", "outer_format", "inner_format", "size", "stages"):
            if e.get(k) != im.get(k):
                errs.append("%s: %s %r, status.json says %r" % (what, k, e.get(k), im.get(k)))
for key, n in seen.items():
    if n != 1:
        errs.append("%d verdict lines for %s generation %d" % (n, key[0], key[1]))

if phase == "changes":
    want = {("keep.img", 1): "accepted/inner.raw", ("gone.img", 1): "accepted/inner.raw",
            ("repl.img", 1): "accepted/inner.raw", ("wrong.img", 1): "rejected/key.wrong",
            ("added.img", 1): "accepted/inner.raw", ("repl.img", 2): "accepted/inner.raw"}
else:
    want = {("keep.img", 1): "accepted/inner.raw", ("repl.img", 1): "accepted/inner.raw",
            ("wrong.img", 1): "rejected/key.wrong", ("added.img", 1): "accepted/inner.raw"}
if set(seen) != set(want):
    errs.append("verdicts for %s, want %s" % (sorted(seen), sorted(want)))
for e in verdicts:
    w = want.get((e.get("name"), e.get("generation")))
    if w and "%s/%s" % (e.get("state"), e.get("check")) != w:
        errs.append("line %d: %s generation %s is %s/%s, want %s: %s" % (
            e["_line"], e.get("name"), e.get("generation"), e.get("state"), e.get("check"), w, e.get("reason")))
    if e.get("check") == "key.wrong" and ("luks" not in e.get("stages", []) or "inner" in e.get("stages", [])):
        errs.append("line %d: key.wrong with stages %s (want luks, and no inner)" % (e["_line"], e.get("stages")))
if len(verdicts) != status.get("inspections"):
    errs.append("%d verdict lines, status.json counts %r inspections" % (len(verdicts), status.get("inspections")))
changes = [e for e in ev if e.get("event") in ("added", "changed", "removed")]
if len(changes) != status.get("changes"):
    errs.append("%d added/changed/removed lines, status.json counts %r changes" % (len(changes), status.get("changes")))

if phase == "changes":
    for event, name, gen in (("added", "added.img", 1), ("changed", "repl.img", 1), ("removed", "gone.img", 1)):
        at = pos(event, name)
        if len(at) != 1 or ev[at[0]].get("generation") != gen:
            errs.append("%s of %s: lines %s with generations %s, want one of generation %d" % (
                event, name, [ev[k]["_line"] for k in at], [ev[k].get("generation") for k in at], gen))
            continue
        e, k = ev[at[0]], at[0]
        what = "line %d (%s of %s)" % (e["_line"], event, name)
        if [x for x in changes if x.get("name") == name] != [e]:
            errs.append("%s: other change lines for %s" % (what, name))
        if event == "added":
            same_file(e, name, 1, what)
            v = pos("verdict", name, 1)
            if live.get(name, {}).get("generation") != 1 or not v or v[0] < k:
                errs.append("%s: status.json generation %r, verdict lines at %s (want 1, after it)" % (
                    what, live.get(name, {}).get("generation"), v))
        elif event == "changed":
            same_file(e, name, 2, what + " (the new file)")
            old, new = pos("verdict", name, 1), pos("verdict", name, 2)
            if live.get(name, {}).get("generation") != 2:
                errs.append("%s: status.json generation %r, want 2" % (what, live.get(name, {}).get("generation")))
            if not old or not new or not old[0] < k < new[0]:
                errs.append("%s: not between the verdicts of generations 1 (%s) and 2 (%s)" % (what, old, new))
        else:
            v = pos("verdict", name)
            if name in live:
                errs.append("%s: status.json still lists %s" % (what, name))
            if len(v) != 1 or v[0] > k:
                errs.append("%s: verdict lines of %s at %s (want one, before it)" % (what, name, v))
for e in errs:
    print(e)
EOF

# ---- the first mount, and changes under it -------------------------------------

[ ! -e "$LOG" ] || fail "$LOG exists before the mount"
facts "$W/facts.1.json" keep.img="$STORE/keep.img@1" gone.img="$STORE/gone.img@1" repl.img="$STORE/repl.img@1" \
    wrong.img="$STORE/wrong.img@1" added.img="$STAGE/added.img@1" repl.img="$STAGE/repl.new@2"
mount_store "$STORE" "$MNT" "keydir=$KEYS,audit_log=$LOG"
wait_verdicts "$MNT" 4
wait_log 0 verdict 4
assert_eq 640 "$(stat -c %a "$LOG")" "mode of the new audit log"
assert_eq "$(id -u)" "$(stat -c %u "$LOG")" "owner of the new audit log"

mv "$STAGE/added.img" "$STORE/added.img" || fail "cannot move added.img in"
wait_status added.img accepted inner.raw 1
wait_log 0 verdict 1 added.img 1
mv "$STAGE/repl.new" "$STORE/repl.img" || fail "cannot move repl.new over repl.img"
wait_status repl.img accepted inner.raw 2
wait_log 0 verdict 1 repl.img 2
rm "$STORE/gone.img" || fail "cannot remove gone.img"
poll_until "$DEADLINE" status_absent "$MNT" gone.img || fail "gone.img still listed $DEADLINE s after rm"
wait_log 0 removed 1 gone.img
wait_log 0 added 1 added.img
wait_log 0 changed 1 repl.img
cp "$MNT/.safeimgfs/status.json" "$W/status.1.json"
umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
out=$("$PYTHON" "$W/check_audit.py" "$LOG" 0 "$STORE_REAL" "$W/status.1.json" "$W/facts.1.json" changes) ||
    fail "checking the audit log failed"
while IFS= read -r line; do
    [ -n "$line" ] && problem "first mount: $line"
done <<<"$out"
note "first mount: $(grep -c . "$LOG") lines checked"

# ---- a second mount appends -------------------------------------------------------

cp "$LOG" "$W/audit.1" || fail "cannot copy the log"
size1=$(stat -c %s "$LOG")
facts "$W/facts.2.json" keep.img="$STORE/keep.img@1" repl.img="$STORE/repl.img@1" wrong.img="$STORE/wrong.img@1" \
    added.img="$STORE/added.img@1"
mount_store "$STORE" "$MNT" "keydir=$KEYS,audit_log=$LOG"
wait_verdicts "$MNT" 4
wait_log "$size1" verdict 4
cp "$MNT/.safeimgfs/status.json" "$W/status.2.json"
umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after the second fusermount3 -u"
cmp -s "$W/audit.1" <(head -c "$size1" "$LOG") || problem "the second mount changed the first mount's lines"
[ "$(stat -c %s "$LOG")" -gt "$size1" ] || problem "the second mount appended nothing"
assert_eq 640 "$(stat -c %a "$LOG")" "mode of the audit log after the second mount"
out=$("$PYTHON" "$W/check_audit.py" "$LOG" "$size1" "$STORE_REAL" "$W/status.2.json" "$W/facts.2.json" again) ||
    fail "checking the appended part of the audit log failed"
while IFS= read -r line; do
    [ -n "$line" ] && problem "second mount: $line"
done <<<"$out"
note "second mount appended $(($(stat -c %s "$LOG") - size1)) bytes"

# ---- no key material anywhere ---------------------------------------------------------

secrets_absent "$LOG" "the audit log" "${SECRETS[@]}"
for log in "$SCRATCH"/daemon.*.log; do
    secrets_absent "$log" "daemon output ${log##*/}" "${SECRETS[@]}"
done

# ---- an audit log that cannot be opened ------------------------------------------------

daemon_refuses 2 "$W/nodir/audit.log" "$STORE" "$MNT" "keydir=$KEYS,audit_log=$W/nodir/audit.log"
[ ! -e "$W/nodir" ] || problem "the daemon created $W/nodir"

problems_end
echo "PASS: $TEST_NAME"
exit 0
