#!/usr/bin/env bash
# Fetch the pretrained models vis_ros can use into .cache/models/ (never committed, never at run time).
#
# MediaPipe Selfie Segmentation (Apache-2.0, Google): the general 256x256 and the landscape 144x256
# person/foreground models ship inside the mediapipe==0.10.21 wheel (later mediapipe releases ship
# no .tflite). We download that wheel with pip (no install, no dependencies) and unpack only the two
# .tflite files, checking their sha256. Idempotent: files already in place with the right hash are kept.
#
#   bash scripts/fetch_models.sh          # PYTHON=... to pick the interpreter whose pip to use
#
# Then: backend: litert (default model_path .cache/models/selfie_segmentation.tflite).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
CACHE=$ROOT/.cache
MODELS=$CACHE/models
WHEELS=$CACHE/wheels
say() { printf '[fetch_models] %s\n' "$*" >&2; }

# name, member path inside the wheel, sha256
FILES=(
  "selfie_segmentation.tflite mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite 9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
  "selfie_segmentation_landscape.tflite mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"
)

have_all() {
  local entry name member sha
  for entry in "${FILES[@]}"; do
    read -r name member sha <<<"$entry"
    [ -f "$MODELS/$name" ] && [ "$(sha256sum "$MODELS/$name" | cut -c1-64)" = "$sha" ] || return 1
  done
}

if have_all; then
  say "models up to date in $MODELS"
  exit 0
fi

mkdir -p "$MODELS" "$WHEELS"
WHEEL=$(ls "$WHEELS"/mediapipe-0.10.21-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$WHEEL" ]; then
  say "downloading the mediapipe 0.10.21 wheel (about 36 MB; only two .tflite files are kept)"
  # The .tflite files are the same in every platform's wheel, so always ask for the cp311 x86_64
  # one: this works from any host (an ARM robot, another Python) and never builds from source.
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$WHEELS" mediapipe==0.10.21 \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) \
    || { say "pip download mediapipe==0.10.21 failed: check network/index access (pip config list)"; exit 1; }
  WHEEL=$(ls "$WHEELS"/mediapipe-0.10.21-*.whl | head -n1)
fi

"$PY" - "$WHEEL" "$MODELS" "${FILES[@]}" <<'PY'
import hashlib, os, sys, zipfile
wheel, out_dir, entries = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as archive:
    for entry in entries:
        name, member, sha = entry.split()
        data = archive.read(member)
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            sys.exit(f'[fetch_models] {member} in {wheel} has sha256 {got}, expected {sha}; '
                     'delete the wheel and rerun')
        tmp = os.path.join(out_dir, name + '.part')
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, os.path.join(out_dir, name))   # never leave a half-written model
        print(f'[fetch_models] {name} ({len(data)} bytes) -> {out_dir}', file=sys.stderr)
PY
# The wheel is 36 MB and only the two models matter: drop it.
rm -f "$WHEELS"/mediapipe-0.10.21-*.whl
rmdir "$WHEELS" 2>/dev/null || true
