#!/bin/bash
# Integration test: image names that need care (mounted with -o keyfile=FILE).
#
# One LUKS2 image stored under names with a double quote, a backslash, a
# newline, a tab, a control byte, non-ASCII UTF-8, a leading dash, 255 bytes
# (NAME_MAX), and a name that is not valid UTF-8 (byte 0xff). Checks:
#   - status.json stays strict JSON (RFC 8259: UTF-8, control characters
#     escaped) whatever the names; every valid-UTF-8 name appears in it exactly,
#     accepted, with check inner.raw;
#   - each of those views is listed by readdir (byte-exact names) and reads back
#     the plaintext;
#   - the non-UTF-8 name: whatever the daemon decides (list it escaped, reject
#     it, leave it out), status.json remains valid UTF-8 JSON and, if the view
#     is served, its content is the plaintext.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain MNT=$SCRATCH/mnt
mkdir -p "$STORE" "$PLAIN" "$MNT"
write_key "$SCRATCH/pass.key" pw-names
run_gen luks-reencrypt.sh --size-kib 1024 "$PLAIN" base.img "$SCRATCH/pass.key" "$PLAIN"

# Names as Python bytes literals (so that any byte can be written).
# Served: any valid UTF-8 name without control characters.
NAMES_PY='[b"q\"uote.img", b"back\\slash.img", "ünïcödé-名前.img".encode(),
  b"-leading-dash.img", b"x" * 251 + b".img"]'
# Never served (name.invalid): control characters could forge log lines,
# and bytes that are not UTF-8 cannot be named in status.json.  Listed
# with their bytes escaped as \xNN.
BAD_PY='[(b"new\nline.img", "new\\x0aline.img"), (b"tab\there.img", "tab\\x09here.img"),
  (b"ctl\x01byte.img", "ctl\\x01byte.img"), (b"bad\xffutf8.img", "bad\\xffutf8.img")]'
"$PYTHON" - "$PLAIN/base.img" "$STORE" <<EOF || fail "cannot make the store"
import os, shutil, sys
src, store = sys.argv[1], sys.argv[2].encode()
for n in $NAMES_PY + [b for b, _ in $BAD_PY]:
    shutil.copyfile(src, os.path.join(store, n))
EOF
N=$("$PYTHON" -c "print(len($NAMES_PY) + len($BAD_PY))")

mount_store "$STORE" "$MNT" "keyfile=$SCRATCH/pass.key"
wait_verdicts "$MNT" "$N"

out=$("$PYTHON" - "$MNT" "$PLAIN/base.img.plain" <<EOF
import json, os, sys
mnt, plain = sys.argv[1], sys.argv[2]
ref = open(plain, "rb").read()
errs = []
raw = open(os.path.join(mnt, ".safeimgfs/status.json"), "rb").read()
try:
    text = raw.decode("utf-8")          # strict: JSON text is UTF-8
    doc = json.loads(text)              # strict: raw control characters refused
except ValueError as e:
    print("status.json is not strict JSON: %s" % e)
    sys.exit(1)
ims = {i["name"]: i for i in doc["images"]}
listed = set(os.listdir(mnt.encode()))
for n in $NAMES_PY:
    s = n.decode("utf-8")
    im = ims.get(s)
    if im is None:
        errs.append("%r missing from status.json" % s)
        continue
    if im.get("state") != "accepted" or im.get("check") != "inner.raw":
        errs.append("%r: %s/%s" % (s, im.get("state"), im.get("check")))
        continue
    if n not in listed:
        errs.append("%r not listed by readdir" % s)
    try:
        with open(os.path.join(mnt.encode(), n), "rb") as f:
            if f.read() != ref:
                errs.append("%r: content differs from the plaintext" % s)
    except OSError as e:
        errs.append("%r: %s" % (s, e))
for b, shown in $BAD_PY:
    im = ims.get(shown)
    if im is None:
        errs.append("%r missing from status.json (as %r)" % (b, shown))
    elif im.get("state") != "rejected" or im.get("check") != "name.invalid":
        errs.append("%r: %s/%s, want rejected/name.invalid" % (b, im.get("state"), im.get("check")))
    if b in listed:
        errs.append("%r is served" % b)
    if os.path.exists(os.path.join(mnt.encode(), b)):
        errs.append("%r can be looked up" % b)
if len(doc["images"]) != len($NAMES_PY) + len($BAD_PY):
    errs.append("%d entries in status.json, want %d" %
                (len(doc["images"]), len($NAMES_PY) + len($BAD_PY)))
print("; ".join(errs))
sys.exit(1 if errs else 0)
EOF
) || fail "$out"
note "special names: status.json valid, valid names served, control bytes and bad UTF-8 refused"

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
