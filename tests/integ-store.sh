#!/bin/bash
# Integration test: a store that changes under a live mount.
#
# Mounted with -o keydir=DIR on a store of six images (gone, replaced, grow,
# shrink, ow: accepted LUKS1/LUKS2 volumes; late: a volume whose key file is
# wrong, rejected key.wrong). Images that arrive later are made beforehand in
# a staging directory on the same filesystem, so that `mv` is an atomic
# rename. Every change must be noticed without remounting (the polls have
# 20 s deadlines), and:
#   1. add: cp a new image in (its name was looked up, ENOENT, before) ->
#      accepted, listed, content = its plaintext;
#   2. rename-in: NAME.part (and .hidden, *.tmp, *.json, *.key files) never
#      appear in readdir or status.json, nor answer a lookup (checked once a
#      marker image added after them has a verdict); mv NAME.part NAME, and
#      at once (no poll) the view is read whole and equals its plaintext ->
#      accepted, generation 1, content right;
#   3. remove: rm -> ENOENT (with the name's entry cached by a stat just
#      before), gone from readdir and status.json;
#   4. replace: mv another image over NAME -> a handle opened before reads EIO;
#      the view comes back with the new plaintext, generation 2;
#   5. append 1 MiB to a LUKS1 blob -> the open handle reads EIO; the view
#      grows by 1 MiB, its content is the independent decryption of the new
#      blob (tests/gen/luks-crypt.py), its first 2 MiB the old plaintext;
#   6. truncate a LUKS2 blob to 1 MiB of data while a reader holds it -> EIO,
#      never bytes other than the original plaintext; then a 1 MiB view of
#      the plaintext's first MiB;
#   7. overwrite in place (one write(2) of another image of the same size) ->
#      EIO on the open handle; generation grows; with the old plaintext in the
#      page cache (keep_cache), no read after the new verdict shows it;
#   8. a rejected image replaced by a good one is accepted (generation 2);
#      a sidecar NAME.json added later re-inspects it: declared.mismatch,
#      generation 3, ENOENT, and a handle opened before reads EIO;
#   9. status.json: started_at (RFC 3339, constant), inspections and changes
#      (grow at every step), per image generation, inspected_at (RFC 3339
#      UTC, never going back), inspect_ms (integer);
#  10. churn: renames every 50 ms under a reader for 6 s: the mount never
#      wedges, every whole read is one of the two plaintexts, and once quiet
#      the last file renamed in is served;
#  11. a key file written into the key directory later: the image rejected
#      with key.missing is judged again (generation 2) and accepted.
# Throughout: status.json stays readable within 10 s; at the end fusermount3
# -u ends the daemon with status 0, and its log has no error line except for
# the images that changed, and no inspect.internal verdict.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup sha256sum timeout truncate dd cmp
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt
STAGE=$SCRATCH/stage W=$SCRATCH/work
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$STAGE" "$W"
chmod 700 "$KEYS"
DEADLINE=20   # seconds for any change to be noticed and decided
MIB=1048576
PASS='store-change-pass'
KEY=$SCRATCH/pass.key
write_key "$KEY" "$PASS"
write_key "$SCRATCH/other.key" another-pass

# Present at mount.
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" gone.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STORE" replaced.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --luks1 --size-kib 2048 "$STORE" grow.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --sector-size 4096 --size-kib 4096 "$STORE" shrink.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STORE" ow.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" late.img "$SCRATCH/other.key" "$PLAIN"
# No key for this one until case 11.
gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" keyless.img "$KEY" "$PLAIN"
# Arriving later (the plaintexts are named after the staged files).
head -c $MIB /dev/urandom >"$W/random" || fail "cannot read /dev/urandom"
printf 'safeimgfs store-change test: added.img\n' | dd of="$W/random" conv=notrunc status=none
gen_bg luks-payload.sh --payload "$W/random" "$STAGE" added.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STAGE" renamed.src "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STAGE" replaced.new "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 2048 "$STAGE" ow.new "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STAGE" late.good "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STAGE" churn.a "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --size-kib 1024 "$STAGE" churn.b "$KEY" "$PLAIN"
gen_wait
# Every name gets the key, also the names that must never be candidates: if
# one were inspected it would be accepted and show up.
EXCLUDED=(.hidden.img ex.img.part ex.img.tmp ex.img.json ex.img.key renamed.img.part)
for n in gone.img replaced.img grow.img shrink.img ow.img late.img added.img renamed.img churn.img \
    "${EXCLUDED[@]}"; do
    write_key "$KEYS/$n.key" "$PASS"
done
assert_eq "$(stat -c %s "$STORE/ow.img")" "$(stat -c %s "$STAGE/ow.new")" "sizes of ow.img and ow.new"
note "made the images"

# ---- helpers ----------------------------------------------------------------

# _image_is NAME STATE CHECK MIN_GEN SIZE: NAME's status.json entry has this
# state, check, a generation of at least MIN_GEN and this size ("-": any).
_image_is() {
    "$PYTHON" - "$MNT/.safeimgfs/status.json" "$@" <<EOF 2>/dev/null
import json, sys
doc = $_STATUS_LOAD
name, state, check, gen, size = sys.argv[2:7]
for im in doc["images"]:
    if im["name"] != name:
        continue
    g = im.get("generation")
    ok = (im["state"] == state and check in ("-", im["check"]) and
          (gen == "-" or (isinstance(g, int) and g >= int(gen))) and
          (size == "-" or im.get("size") == int(size)))
    sys.exit(0 if ok else 1)
sys.exit(1)
EOF
}

# wait_image NAME STATE CHECK MIN_GEN SIZE: poll until _image_is, or fail.
wait_image() {
    poll_until "$DEADLINE" _image_is "$@" ||
        fail "$1: not $2 (check $3, generation >= $4, size $5) within $DEADLINE s; status.json entry:
$(_entry "$1")"
}

_entry() {   # NAME: its status.json entry, compact, or "(absent)"
    "$PYTHON" - "$MNT/.safeimgfs/status.json" "$1" <<EOF
import json, sys
doc = $_STATUS_LOAD
e = [im for im in doc["images"] if im["name"] == sys.argv[2]]
print(json.dumps({k: v for k, v in e[0].items() if k not in ("probes", "encryption")}) if e else "(absent)")
EOF
}

_errno_is() {   # WANT PYTHON-EXPR ARG...
    [ "$(errno_of "${@:2}")" = "$1" ]
}

# view_becomes NAME EXPECTED [OLD]: poll (<= DEADLINE) until a whole read of
# the view equals EXPECTED. A read that fails, or that returns a strict
# prefix of EXPECTED (an intermediate inspection of a blob still being
# written), is retried; any other complete read fails the test at once
# (saying whether it was the OLD plaintext: a stale page cache).
view_becomes() {
    local out
    out=$("$PYTHON" - "$MNT/$1" "$2" "${3:-}" "$DEADLINE" <<'EOF'
import errno, os, sys, time
view, want_f, old_f, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
want = open(want_f, "rb").read()
old = open(old_f, "rb").read() if old_f else None
end = time.monotonic() + limit
last = "no read yet"
while True:
    try:
        with open(view, "rb", buffering=0) as f:
            got = b""
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                got += b
        if got == want:
            sys.exit(0)
        if len(got) < len(want) and want.startswith(got):
            last = "read %d bytes, a prefix of the %d expected" % (len(got), len(want))
        else:
            if old is not None and got == old:
                print("a complete read after the new verdict returned the OLD plaintext (stale cache)")
            else:
                d = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                         min(len(got), len(want)))
                print("a complete read returned %d bytes, expected %d; first difference at %d" %
                      (len(got), len(want), d))
            sys.exit(1)
    except OSError as e:
        last = "read failed: %s" % errno.errorcode.get(e.errno, e.errno)
    if time.monotonic() > end:
        print("no read equal to the expected content within %d s (last: %s)" % (limit, last))
        sys.exit(1)
    time.sleep(0.05)
EOF
    ) || fail "$1: $out"
}

# The top-level counters, checked to have grown since the previous call.
PREV_INSPECTIONS=0 PREV_CHANGES=0
counters_grew() {   # WHAT INSPECTIONS_MUST_GROW(1/0)
    local ins chg
    ins=$(status_top "$MNT" inspections) chg=$(status_top "$MNT" changes)
    [[ $ins =~ ^[0-9]+$ ]] || fail "status.json inspections is '$ins' after $1"
    [[ $chg =~ ^[0-9]+$ ]] || fail "status.json changes is '$chg' after $1"
    [ "$chg" -gt "$PREV_CHANGES" ] || fail "changes did not grow after $1 ($PREV_CHANGES -> $chg)"
    if [ "$2" = 1 ]; then
        [ "$ins" -gt "$PREV_INSPECTIONS" ] || fail "inspections did not grow after $1 ($PREV_INSPECTIONS -> $ins)"
    else
        [ "$ins" -ge "$PREV_INSPECTIONS" ] || fail "inspections went back after $1 ($PREV_INSPECTIONS -> $ins)"
    fi
    PREV_INSPECTIONS=$ins PREV_CHANGES=$chg
}

# check_times: the store-change fields of status.json have their documented
# types; started_at is STARTED_AT; no image's inspected_at went back since the
# previous call.
check_times() {
    local out
    out=$("$PYTHON" - "$MNT/.safeimgfs/status.json" "$T_BEFORE" "$SCRATCH/inspected_at" <<EOF
import datetime, json, os, re, sys, time
doc = $_STATUS_LOAD
t_before = float(sys.argv[2])
prev_f = sys.argv[3]
prev = json.load(open(prev_f)) if os.path.exists(prev_f) else {}
errs = []
RFC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)\$")
def ts(v, what):
    if not isinstance(v, str) or not RFC.match(v):
        errs.append("%s is %r, not an RFC 3339 UTC time" % (what, v))
        return None
    return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
now = time.time()
s = ts(doc.get("started_at"), "started_at")
if s is not None and not (t_before - 2 <= s <= now + 1):
    errs.append("started_at %s is not the time of the mount" % doc["started_at"])
for f in ("inspections", "changes"):
    if not isinstance(doc.get(f), int) or doc.get(f) < 0:
        errs.append("%s is %r" % (f, doc.get(f)))
seen = {}
for im in doc["images"]:
    if im["state"] == "pending":
        continue
    n = im["name"]
    g = im.get("generation")
    if not isinstance(g, int) or g < 1:
        errs.append("%s: generation %r" % (n, g))
    if not isinstance(im.get("inspect_ms"), int) or im.get("inspect_ms") < 0:
        errs.append("%s: inspect_ms %r" % (n, im.get("inspect_ms")))
    t = ts(im.get("inspected_at"), n + ": inspected_at")
    if t is None:
        continue
    if s is not None and t < s - 1:
        errs.append("%s: inspected_at %s is before started_at" % (n, im["inspected_at"]))
    if t > now + 1:
        errs.append("%s: inspected_at %s is in the future" % (n, im["inspected_at"]))
    if n in prev and t < prev[n]:
        errs.append("%s: inspected_at went back" % n)
    seen[n] = t
json.dump(seen, open(prev_f, "w"))
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
    ) || fail "status.json fields: $out"
    local at
    at=$(status_top "$MNT" started_at)
    [ -z "${STARTED_AT:-}" ] && STARTED_AT=$at
    assert_eq "$STARTED_AT" "$at" "started_at (must not change while mounted)"
}

# step WHAT REINSPECTED(1/0): a case is done: the daemon answers, changes
# grew (and inspections, when the case re-inspected an image), the fields
# are well formed.
step() {
    status_responsive "$MNT"
    counters_grew "$1" "$2"
    check_times
    note "$1: ok"
}

plain() { echo "$PLAIN/$1.plain"; }

# ---- mount --------------------------------------------------------------------

T_BEFORE=$(date +%s.%N)
mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" 7
INITIAL=(gone.img replaced.img grow.img shrink.img ow.img)
for n in "${INITIAL[@]}"; do
    assert_eq accepted "$(status_field "$MNT" "$n" state)" "$n state at mount"
    assert_eq "$(sha256_of "$(plain "$n")")" "$(sha256_of "$MNT/$n")" "$n content at mount"
    assert_eq 1 "$(status_field "$MNT" "$n" generation)" "$n generation at mount"
done
assert_eq rejected "$(status_field "$MNT" late.img state)" "late.img state at mount"
assert_eq key.wrong "$(status_field "$MNT" late.img check)" "late.img check at mount"
assert_eq 1 "$(status_field "$MNT" late.img generation)" "late.img generation at mount"
ins=$(status_top "$MNT" inspections)
assert_eq key.missing "$(status_field "$MNT" keyless.img check)" "keyless.img check at mount"
[[ $ins =~ ^[0-9]+$ ]] && [ "$ins" -ge 7 ] || fail "inspections at mount is '$ins', expected >= 7"
assert_eq 0 "$(status_top "$MNT" changes)" "changes right after mount"
PREV_INSPECTIONS=$ins PREV_CHANGES=0
START_INSPECTIONS=$ins
check_times
note "mounted: seven verdicts, started_at $STARTED_AT"

# ---- 1. add -------------------------------------------------------------------

assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$MNT/added.img")" "stat of added.img before it exists"
cp "$STAGE/added.img" "$STORE/added.img" || fail "cp added.img"
wait_image added.img accepted inner.raw 1 $MIB
view_becomes added.img "$(plain added.img)"
grep -qx added.img <<<"$(listed_names "$MNT")" || fail "added.img not listed by readdir"
assert_eq "regular file 440 $MIB" "$(stat -c '%F %a %s' "$MNT/added.img")" "added.img type/mode/size"
step "1. add" 1

# ---- 2. rename-in, and names that are never candidates --------------------------

cp "$STAGE/renamed.src" "$STORE/renamed.img.part" || fail "cp renamed.img.part"
for n in "${EXCLUDED[@]}"; do
    [ -e "$STORE/$n" ] || cp "$STAGE/renamed.src" "$STORE/$n" || fail "cp $n"
done
# Changes are handled in order: once an image added after these files has a
# verdict, the daemon has seen them.
head -c $MIB /dev/zero >"$STAGE/marker.img"
mv "$STAGE/marker.img" "$STORE/marker.img" || fail "mv marker.img"
wait_image marker.img rejected - 1 -
names=$(status_names "$MNT") listed=$(listed_names "$MNT")
for n in "${EXCLUDED[@]}" renamed.img; do
    ! grep -qxF -- "$n" <<<"$names" || fail "$n is in status.json while it is not a candidate"
    ! grep -qxF -- "$n" <<<"$listed" || fail "$n is listed by readdir while it is not a candidate"
    assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$MNT/$n")" "stat of $n"
done
mv "$STORE/renamed.img.part" "$STORE/renamed.img" || fail "mv renamed.img.part renamed.img"
# Straight after the rename, before any poll: a lookup of the new name
# waits for its verdict instead of failing (a consumer that renames and
# opens at once, as Nova's image cache does).
sha=$(sha256sum <"$MNT/renamed.img" | cut -d' ' -f1) || fail "renamed.img could not be read right after the rename"
assert_eq "$(sha256_of "$(plain renamed.src)")" "$sha" "renamed.img read right after the rename"
wait_image renamed.img accepted inner.raw 1 $MIB
view_becomes renamed.img "$(plain renamed.src)"
assert_eq 1 "$(status_field "$MNT" renamed.img generation)" "renamed.img generation (renamed in whole)"
grep -qx renamed.img <<<"$(listed_names "$MNT")" || fail "renamed.img not listed by readdir"
! grep -qxF renamed.img.part <<<"$(status_names "$MNT")" || fail "renamed.img.part in status.json after the rename"
step "2. rename-in" 1

# ---- 3. remove ------------------------------------------------------------------

assert_eq OK "$(errno_of 'os.stat(a[0])' "$MNT/gone.img")" "stat of gone.img before rm"
rm "$STORE/gone.img" || fail "rm gone.img"
poll_until "$DEADLINE" _errno_is ENOENT 'os.stat(a[0])' "$MNT/gone.img" ||
    fail "stat of removed gone.img still gives $(errno_of 'os.stat(a[0])' "$MNT/gone.img") after $DEADLINE s"
assert_eq ENOENT "$(errno_of 'open(a[0], "rb")' "$MNT/gone.img")" "open of removed gone.img"
! grep -qx gone.img <<<"$(listed_names "$MNT")" || fail "removed gone.img still listed by readdir"
! grep -qx gone.img <<<"$(status_names "$MNT")" || fail "removed gone.img still in status.json"
step "3. remove" 0

# ---- 4. replace by rename -----------------------------------------------------

hold_view replaced "$MNT/replaced.img" "$(plain replaced.img)"
hold_changing replaced
mv "$STAGE/replaced.new" "$STORE/replaced.img" || fail "mv replaced.new over replaced.img"
hold_result replaced || fail "open handle of replaced.img: $HOLD_REPORT"
note "replaced.img: $HOLD_REPORT"
wait_image replaced.img accepted inner.raw 2 $((2 * MIB))
view_becomes replaced.img "$(plain replaced.new)" "$(plain replaced.img)"
assert_eq 2 "$(status_field "$MNT" replaced.img generation)" "replaced.img generation"
step "4. replace" 1

# ---- 5. append ------------------------------------------------------------------

hold_view grow "$MNT/grow.img" "$(plain grow.img)"
head -c $MIB /dev/urandom >"$W/extra"
hold_changing grow
cat "$W/extra" >>"$STORE/grow.img" || fail "append to grow.img"
hold_result grow || fail "open handle of grow.img: $HOLD_REPORT"
note "grow.img: $HOLD_REPORT"
# The expected plaintext, decrypted independently of safeimgfs.
"$PYTHON" "$GEN/luks-crypt.py" decrypt "$STORE/grow.img" "$W/grow.expect" --key-file "$KEY" >/dev/null ||
    fail "luks-crypt.py cannot decrypt the grown grow.img"
assert_eq $((3 * MIB)) "$(stat -c %s "$W/grow.expect")" "independent plaintext size of the grown grow.img"
cmp -n $((2 * MIB)) "$W/grow.expect" "$(plain grow.img)" >/dev/null ||
    fail "independent decryption of the grown grow.img does not start with its old plaintext (generator?)"
wait_image grow.img accepted inner.raw 2 $((3 * MIB))
view_becomes grow.img "$W/grow.expect" "$(plain grow.img)"
cmp -n $((2 * MIB)) "$MNT/grow.img" "$(plain grow.img)" >/dev/null ||
    fail "grow.img: the first 2 MiB of the grown view are not the old plaintext"
assert_eq $((3 * MIB)) "$(stat -c %s "$MNT/grow.img")" "grow.img size after the append"
step "5. append" 1

# ---- 6. truncate ------------------------------------------------------------------

off=$("$PYTHON" "$GEN/luks-crypt.py" info "$STORE/shrink.img" |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])') ||
    fail "cannot read the data offset of shrink.img"
head -c $MIB "$(plain shrink.img)" >"$W/shrink.expect"
hold_view shrink "$MNT/shrink.img" "$(plain shrink.img)"
hold_changing shrink
truncate -s $((off + MIB)) "$STORE/shrink.img" || fail "truncate shrink.img"
hold_result shrink || fail "open handle of shrink.img: $HOLD_REPORT"
note "shrink.img: $HOLD_REPORT"
wait_image shrink.img accepted inner.raw 2 $MIB
view_becomes shrink.img "$W/shrink.expect" "$(plain shrink.img)"
step "6. truncate" 1

# ---- 7. overwrite in place ------------------------------------------------------

g0=$(status_field "$MNT" ow.img generation)
[[ $g0 =~ ^[0-9]+$ ]] || fail "ow.img generation is '$g0'"
# The old plaintext into the page cache (views are kept_cache'd): a fresh
# read after the change must not be served from it.
assert_eq "$(sha256_of "$(plain ow.img)")" "$(sha256_of "$MNT/ow.img")" "ow.img content before the overwrite"
hold_view ow "$MNT/ow.img" "$(plain ow.img)"
hold_changing ow
# One read and one write(2) of the whole image: no half-written state can be
# inspected.
dd if="$STAGE/ow.new" of="$STORE/ow.img" bs=16M iflag=fullblock conv=notrunc status=none ||
    fail "dd over ow.img"
hold_result ow || fail "open handle of ow.img: $HOLD_REPORT"
note "ow.img: $HOLD_REPORT"
wait_image ow.img accepted inner.raw $((g0 + 1)) $((2 * MIB))
view_becomes ow.img "$(plain ow.new)" "$(plain ow.img)"
step "7. overwrite in place" 1

# ---- 8. rejected, then replaced; then a sidecar -------------------------------------

mv "$STAGE/late.good" "$STORE/late.img" || fail "mv late.good over late.img"
wait_image late.img accepted inner.raw 2 $MIB
view_becomes late.img "$(plain late.good)"
assert_eq 2 "$(status_field "$MNT" late.img generation)" "late.img generation after the replacement"
step "8a. rejected image replaced" 1
hold_view late "$MNT/late.img" "$(plain late.good)"
printf '{"disk_format": "qcow2"}' >"$STAGE/late.img.json"
hold_changing late
mv "$STAGE/late.img.json" "$STORE/late.img.json" || fail "mv late.img.json"
hold_result late || fail "open handle of late.img when its sidecar appeared: $HOLD_REPORT"
note "late.img: $HOLD_REPORT"
wait_image late.img rejected declared.mismatch 3 -
assert_eq 3 "$(status_field "$MNT" late.img generation)" "late.img generation after the sidecar"
poll_until "$DEADLINE" _errno_is ENOENT 'os.stat(a[0])' "$MNT/late.img" ||
    fail "stat of late.img gives $(errno_of 'os.stat(a[0])' "$MNT/late.img") after its sidecar rejected it"
! grep -qx late.img <<<"$(listed_names "$MNT")" || fail "rejected late.img still listed by readdir"
! grep -qxF late.img.json <<<"$(status_names "$MNT")" || fail "the sidecar late.img.json is listed in status.json"
step "8b. sidecar added" 1

# ---- 10. churn: renames over a name while it is looked up and read ---------------

# For 6 s, churn.img is replaced by rename (churn.a, churn.b in turn) every
# 50 ms while a reader looks it up, opens it and reads it whole in a loop.
# A lookup racing a withdrawal must never wedge the mount (a lookup waiting
# for a name to settle while the kernel is asked to drop that name), and a
# read that succeeds must return exactly one of the two plaintexts.
churner() {
    local i=0 src
    while [ -e "$W/churn.go" ]; do
        src=churn.a
        [ $((i % 2)) -eq 1 ] && src=churn.b
        cp "$STAGE/$src" "$STORE/.churn.tmp" && mv "$STORE/.churn.tmp" "$STORE/churn.img"
        i=$((i + 1))
        sleep 0.05
    done
}
: >"$W/churn.go"
churner &
CHURN_PID=$!
churn_out=$(timeout 60 "$PYTHON" - "$MNT/churn.img" "$(plain churn.a)" "$(plain churn.b)" <<'EOF'
import hashlib, sys, time
view, a, b = sys.argv[1:4]
want = {hashlib.sha256(open(p, "rb").read()).hexdigest(): p for p in (a, b)}
ok = errs = 0
end = time.time() + 6
while time.time() < end:
    try:
        with open(view, "rb") as f:
            data = f.read()
    except OSError:
        errs += 1
        continue
    if hashlib.sha256(data).hexdigest() not in want:
        print("BAD: a read returned %d bytes that are neither plaintext" % len(data))
        sys.exit(1)
    ok += 1
print("%d whole reads, %d failed opens or reads" % (ok, errs))
EOF
) || { rm -f "$W/churn.go"; wait "$CHURN_PID"; fail "churn: ${churn_out:-the reader hung (the mount is wedged)}"; }
rm -f "$W/churn.go"
wait "$CHURN_PID"
status_responsive "$MNT"
note "churn: $churn_out"
# Once quiet, the last file renamed in wins.
last=churn.a
cmp -s "$STORE/churn.img" "$STAGE/churn.b" && last=churn.b
view_becomes churn.img "$(plain "$last")"
note "10. churn: ok"

# ---- 11. a key that arrives later ---------------------------------------------------

# keyless.img was rejected (key.missing); its key file appears in the key
# directory: the image is judged again without touching it.
assert_eq key.missing "$(status_field "$MNT" keyless.img check)" "keyless.img check before its key"
write_key "$KEYS/keyless.img.key" "$PASS"
wait_image keyless.img accepted inner.raw 2 $MIB
view_becomes keyless.img "$(plain keyless.img)"
note "11. key added later: ok"

# ---- 9. counters over the whole run -----------------------------------------------

# Re-inspections at least: added, marker, renamed, replaced, grow, shrink, ow,
# late twice. Changes at least: those nine plus the removal.
ins=$(status_top "$MNT" inspections) chg=$(status_top "$MNT" changes)
[ "$ins" -ge $((START_INSPECTIONS + 9)) ] ||
    fail "inspections grew from $START_INSPECTIONS to only $ins over nine inspections"
[ "$chg" -ge 10 ] || fail "changes is $chg after ten store changes"
# The images nothing touched keep their verdict.
for n in added.img:added.img renamed.img:renamed.src; do
    assert_eq accepted "$(status_field "$MNT" "${n%%:*}" state)" "${n%%:*} state at the end"
    assert_eq "$(sha256_of "$(plain "${n#*:}")")" "$(sha256_of "$MNT/${n%%:*}")" "${n%%:*} content at the end"
done
note "inspections $START_INSPECTIONS -> $ins, changes $chg"

# ---- the end ----------------------------------------------------------------------

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
# Errors may be logged only about the images that changed (reads of a stale
# handle, say); never an internal inspection failure, never a sanitizer report.
CHANGED='replaced\.img|grow\.img|shrink\.img|ow\.img|late\.img|added\.img|renamed\.img|gone\.img|churn\.img'
bad=$(grep -E 'error: ' "$DAEMON_LOG" | grep -vE "error: ($CHANGED)[:,]" || true)
bad2=$(grep -E 'inspect\.internal|Sanitizer|runtime error' "$DAEMON_LOG" || true)
[ -z "$bad$bad2" ] || fail "unexpected errors in the daemon log:
$bad
$bad2"
errs=$(grep -c 'error: ' "$DAEMON_LOG" || true)
note "daemon log: $(wc -l <"$DAEMON_LOG") lines, $errs error lines (all about changed images)"

echo "PASS: $TEST_NAME"
exit 0
