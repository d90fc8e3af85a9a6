#!/bin/bash
# Integration test: safeimg-inspect agrees with the mount, and its exit codes.
#
# A store of accepted images (LUKS2 512/4096 PBKDF2/argon2id, cbc-essiv, LUKS1
# from cryptsetup and qemu-img) and rejected ones (wrong key, missing key, key
# mode 0644, qcow2 payload, LUKS1 and LUKS2 keyslots with 2e9 PBKDF2
# iterations). Checks:
#   - `safeimg-inspect --keydir DIR --json` on all images: one JSON object per
#     image and line, name = basename, the fields of a status.json entry, and
#     state, check, outer_format, inner_format, size equal to the mount's
#     status.json; exit 1 (some rejected);
#   - each image alone: exit 0 if accepted, 1 if rejected, with one JSON line;
#   - only the accepted images: exit 0; without --json: same exit code;
#   - --keyfile with the passphrase shared by two images: both accepted, exit 0;
#     with a wrong passphrase: key.wrong, exit 1;
#   - PBKDF-cost images are judged within 5 s;
#   - exit 2: nonexistent file (alone or with good images), a directory, no
#     image argument, an unknown option, --keydir without its value, a missing
#     keydir, --keyfile together with --keydir.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup qemu-img timeout
need_python_crypto
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt PAY=$SCRATCH/payloads
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$PAY"
chmod 700 "$KEYS"
K=$SCRATCH/genkey

mk() {   # mk NAME PASSPHRASE GENERATOR [OPTIONS...]: image (in the background) + correct 0600 key
    local name=$1 pass=$2; shift 2
    write_key "$K.$name" "$pass"
    gen_bg "$@" "$STORE" "$name" "$K.$name" "$PLAIN"
    write_key "$KEYS/$name.key" "$pass"
}

run_gen payload.sh qcow2 "$PAY/qcow2"
mk a-l2-512.img pw-a luks-reencrypt.sh --sector-size 512 --size-kib 2048
mk a-l2-4k-argon.img shared-pass luks-reencrypt.sh --sector-size 4096 --pbkdf argon2id --size-kib 2048
mk a-l2-essiv.img pw-c luks-reencrypt.sh --cipher aes-cbc-essiv:sha256 --key-size 256 --size-kib 2048
mk a-l1-cs.img shared-pass luks-reencrypt.sh --luks1 --size-kib 2048
mk a-l1-qemu.img pw-e qemu-luks.sh --size-kib 2048
ACCEPTED=(a-l2-512.img a-l2-4k-argon.img a-l2-essiv.img a-l1-cs.img a-l1-qemu.img)
mk r-wrongkey.img pw-right luks-reencrypt.sh --size-kib 1024
mk r-nokey.img pw-nokey luks-reencrypt.sh --size-kib 1024
mk r-perms.img pw-perms luks-reencrypt.sh --size-kib 1024
mk r-qcow2.img pw-q luks-payload.sh --payload "$PAY/qcow2"
mk r-l1-2e9.img pw-l1 luks-reencrypt.sh --luks1 --size-kib 1024
mk r-l2-2e9.img pw-l2 luks-reencrypt.sh --size-kib 1024
gen_wait
write_key "$KEYS/r-wrongkey.img.key" pw-wrong
rm -f "$KEYS/r-nokey.img.key"
chmod 644 "$KEYS/r-perms.img.key"
"$GEN/patch-luks1-pbkdf.py" "$STORE/r-l1-2e9.img" || fail "patch-luks1-pbkdf failed"
"$GEN/patch-luks2-pbkdf.py" "$STORE/r-l2-2e9.img" || fail "patch-luks2-pbkdf failed"
REJECTED=(r-wrongkey.img r-nokey.img r-perms.img r-qcow2.img r-l1-2e9.img r-l2-2e9.img)
ALL=("${ACCEPTED[@]}" "${REJECTED[@]}")
note "generated ${#ALL[@]} images"

INSPECT_OUT=$SCRATCH/inspect.out INSPECT_ERR=$SCRATCH/inspect.err
# inspect ARGS...: run the inspector (bounded), set RC; stdout in $INSPECT_OUT.
inspect() {
    timeout -k 5 60 "$SAFEIMG_INSPECT" "$@" >"$INSPECT_OUT" 2>"$INSPECT_ERR"
    RC=$?
    [ "$RC" -ne 124 ] && [ "$RC" -ne 137 ] || fail "safeimg-inspect $* did not finish within 60 s"
}

paths=()
for n in "${ALL[@]}"; do paths+=("$STORE/$n"); done

# The mount's verdicts.
mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" "${#ALL[@]}"
cp "$MNT/.safeimgfs/status.json" "$SCRATCH/status.json"
umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status"
for n in "${ACCEPTED[@]}"; do
    assert_eq accepted "$(status_field_file "$SCRATCH/status.json" "$n" state)" "$n state in the mount"
done
for n in "${REJECTED[@]}"; do
    assert_eq rejected "$(status_field_file "$SCRATCH/status.json" "$n" state)" "$n state in the mount"
done

# compare_json EXPECTED_COUNT: check $INSPECT_OUT against the saved status.json.
compare_json() {
    "$PYTHON" - "$INSPECT_OUT" "$SCRATCH/status.json" "$1" <<'EOF'
import json, sys
out, status, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
mount = {i["name"]: i for i in json.load(open(status))["images"]}
fields = ("name", "state", "check", "reason", "outer_format", "inner_format", "size")
compare = ("state", "check", "outer_format", "inner_format", "size")
errs = []
lines = [l for l in open(out, encoding="utf-8").read().split("\n") if l.strip()]
if len(lines) != count:
    errs.append("%d JSON lines, want %d" % (len(lines), count))
for l in lines:
    try:
        o = json.loads(l)
    except ValueError as e:
        errs.append("not a JSON object per line: %r (%s)" % (l[:200], e))
        continue
    if not isinstance(o, dict):
        errs.append("line is not an object: %r" % l[:200])
        continue
    missing = [f for f in fields if f not in o]
    if missing:
        errs.append("%s: missing fields %s" % (o.get("name"), missing))
        continue
    m = mount.get(o["name"])
    if m is None:
        errs.append("name %r (want a basename from the store)" % o["name"])
        continue
    for f in compare:
        if o[f] != m.get(f):
            errs.append("%s: %s is %r, the mount says %r" % (o["name"], f, o[f], m.get(f)))
    if o["state"] not in ("accepted", "rejected"):
        errs.append("%s: state %r" % (o["name"], o["state"]))
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
EOF
}

# All images at once.
t0=$(_now_us)
inspect --keydir "$KEYS" --json "${paths[@]}"
ms=$(elapsed_ms "$t0")
assert_eq 1 "$RC" "exit code for all images (some rejected)"
res=$(compare_json "${#ALL[@]}") || fail "inspect --json vs status.json: $res
---- output ----
$(cat "$INSPECT_OUT")"
note "all images: agrees with status.json (${ms} ms)"

# One at a time.
for n in "${ALL[@]}"; do
    t0=$(_now_us)
    inspect --keydir "$KEYS" --json "$STORE/$n"
    ms=$(elapsed_ms "$t0")
    want=1
    case " ${ACCEPTED[*]} " in *" $n "*) want=0 ;; esac
    assert_eq "$want" "$RC" "exit code for $n alone"
    res=$(compare_json 1) || fail "inspect --json $n vs status.json: $res"
    case $n in *2e9*) [ "$ms" -le 5000 ] || fail "$n took ${ms} ms (limit 5000 ms)" ;; esac
done
note "each image alone: exit codes 0/1 and verdicts agree"

# Only accepted images, with and without --json.
acc_paths=()
for n in "${ACCEPTED[@]}"; do acc_paths+=("$STORE/$n"); done
inspect --keydir "$KEYS" --json "${acc_paths[@]}"
assert_eq 0 "$RC" "exit code for accepted images only"
res=$(compare_json "${#ACCEPTED[@]}") || fail "inspect --json (accepted) vs status.json: $res"
inspect --keydir "$KEYS" "${acc_paths[@]}"
assert_eq 0 "$RC" "exit code for accepted images only, without --json"
inspect --keydir "$KEYS" "${paths[@]}"
assert_eq 1 "$RC" "exit code for all images, without --json"

# --keyfile.
write_key "$SCRATCH/shared.key" shared-pass
inspect --keyfile "$SCRATCH/shared.key" --json "$STORE/a-l2-4k-argon.img" "$STORE/a-l1-cs.img"
assert_eq 0 "$RC" "exit code with --keyfile (right passphrase)"
res=$(compare_json 2) || fail "inspect --keyfile vs status.json: $res"
write_key "$SCRATCH/wrong.key" not-the-passphrase
inspect --keyfile "$SCRATCH/wrong.key" --json "$STORE/a-l2-512.img"
assert_eq 1 "$RC" "exit code with --keyfile (wrong passphrase)"
ck=$("$PYTHON" -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); print(o["state"], o["check"])' "$INSPECT_OUT") ||
    fail "no JSON from inspect --keyfile (wrong passphrase)"
assert_eq "rejected key.wrong" "$ck" "verdict with a wrong --keyfile"
# A 0644 --keyfile: either every image is rejected with key.perms (exit 1) or
# the whole run is refused (exit 2, nothing accepted).
chmod 644 "$SCRATCH/shared.key"
inspect --keyfile "$SCRATCH/shared.key" --json "$STORE/a-l1-cs.img"
case $RC in
1)
    ck=$("$PYTHON" -c 'import json,sys; o=json.loads(open(sys.argv[1]).readline()); print(o["state"], o["check"])' "$INSPECT_OUT") ||
        fail "no JSON from inspect with a 0644 --keyfile"
    assert_eq "rejected key.perms" "$ck" "verdict with a 0644 --keyfile" ;;
2)
    grep -q accepted "$INSPECT_OUT" && fail "exit 2 with a 0644 --keyfile, but an image is accepted" ;;
*)
    fail "exit code with a 0644 --keyfile: $RC (want 1 with key.perms, or 2)" ;;
esac
note "--keyfile: accepted, key.wrong, key.perms"

# Exit code 2.
inspect --keydir "$KEYS" --json "$STORE/does-not-exist.img"
assert_eq 2 "$RC" "exit code for a nonexistent file"
inspect --keydir "$KEYS" --json "${acc_paths[@]}" "$STORE/does-not-exist.img"
assert_eq 2 "$RC" "exit code for good images plus a nonexistent file"
inspect --keydir "$KEYS" --json "$SCRATCH"
assert_eq 2 "$RC" "exit code for a directory"
inspect --keydir "$KEYS" --json
assert_eq 2 "$RC" "exit code with no image"
inspect
assert_eq 2 "$RC" "exit code with no argument at all"
inspect --no-such-option --keydir "$KEYS" "$STORE/a-l2-512.img"
assert_eq 2 "$RC" "exit code for an unknown option"
inspect --json --keydir
assert_eq 2 "$RC" "exit code for --keydir without a value"
inspect --keydir "$SCRATCH/no-such-dir" --json "$STORE/a-l2-512.img"
[ "$RC" = 2 ] || [ "$RC" = 1 ] || fail "exit code for a missing keydir: $RC (want 2, or 1 with key.missing)"
inspect --keyfile "$SCRATCH/wrong.key" --keydir "$KEYS" "$STORE/a-l2-512.img"
assert_eq 2 "$RC" "exit code for --keyfile together with --keydir"
note "usage and I/O errors exit 2"

echo "PASS: $TEST_NAME"
exit 0
