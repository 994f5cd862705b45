#!/usr/bin/env bash
# Fetch the standard training and test sets:   bash data/get_data.sh [DEST] [--adnet] [--color] [--real] [--dncnn3]
#   DEST/train   400 BSD images (180x180)  -- SaoYan/DnCNN-PyTorch's data folder
#   DEST/Set12   12 classic test images
#   DEST/Set68   BSD68 test images
# --adnet also links DEST/BSD68 -> Set68 (ADNet's name for it). ADNet's Waterloo training set
# (pristine_images_gray, 4,744 images) must be downloaded from its site by hand.
# --color also fetches the ADNet authors' colour test sets (hellloxiaotian/ADNet color/data):
#   DEST/CBSD68 (68 BMP), DEST/Kodak24 (24 PNG), DEST/McMaster (18 PNG). Their colour training set
#   (pristine_images_color) is Waterloo's too: by hand, as DEST/pristine_images_color. Instead, --color also
#   makes DEST/CBSD432: BSDS500 (BIDS/BSDS500, 500 colour JPEGs) minus the 68 photos of CBSD68, found by
#   their pixels (data/bsds_minus.py), the colour training set of weights/CDnCNN-*.
# --real fetches PolyU's real-world noisy image set (csjunxu/PolyU-Real-World-Noisy-Images-Dataset, its 100
#   cropped pairs <name>_real.JPG noisy, <name>_mean.JPG clean) into DEST/PolyU. Its licence allows
#   non-commercial research use only: read it in that repository before you use the images.
# --dncnn3 fetches the DnCNN authors' super-resolution and JPEG test sets (cszn/DnCNN testsets/, BMP): DEST/Set5,
#   DEST/Set14, DEST/classic5, DEST/LIVE1 (test.py --task sr / --task jpeg). Their repository has no licence file.
set -euo pipefail
dest=$(dirname "$0"); adnet=0; color=0; real=0; dncnn3=0
for arg in "$@"; do
  case "$arg" in --adnet) adnet=1;; --color|--colour) color=1;; --real) real=1;; --dncnn3) dncnn3=1;; *) dest=$arg;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$( [ -x "$here/../.venv/bin/python" ] && echo "$here/../.venv/bin/python" || echo python3 )}
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching DnCNN-PyTorch data (train, Set12, Set68) ..."
if ! git clone --depth 1 --filter=blob:none --sparse https://github.com/SaoYan/DnCNN-PyTorch "$tmp/dncnn" >/dev/null 2>&1; then
  echo "error: could not reach github.com; copy train/, Set12/ and Set68/ into $dest by hand" >&2
  exit 1
fi
(cd "$tmp/dncnn" && git sparse-checkout set data >/dev/null && git checkout >/dev/null 2>&1)
for set in train Set12 Set68; do
  rm -rf "${dest:?}/$set"
  cp -r "$tmp/dncnn/data/$set" "$dest/$set"
  echo "  $dest/$set: $(ls "$dest/$set" | wc -l) images"
done
if [ "$adnet" = 1 ]; then
  ln -sfn Set68 "$dest/BSD68"
  echo "  $dest/BSD68 -> Set68; put Waterloo's images in $dest/pristine_images_gray and use --train_data pristine_images_gray"
fi
if [ "$color" = 1 ]; then
  echo "fetching the ADNet colour test sets (CBSD68, Kodak24, McMaster) ..."
  if ! git clone --depth 1 --filter=blob:none --sparse https://github.com/hellloxiaotian/ADNet "$tmp/adnet" >/dev/null 2>&1; then
    echo "error: could not reach github.com; copy CBSD68/, Kodak24/ and McMaster/ into $dest by hand" >&2
    exit 1
  fi
  (cd "$tmp/adnet" && git sparse-checkout set color/data >/dev/null && git checkout >/dev/null 2>&1)
  for set in CBSD68 Kodak24 McMaster; do
    rm -rf "${dest:?}/$set"
    cp -r "$tmp/adnet/color/data/$set" "$dest/$set"
    echo "  $dest/$set: $(ls "$dest/$set" | wc -l) images"
  done
fi
if [ "$color" = 1 ]; then
  echo "fetching BSDS500 for CBSD432 (BSDS500 minus CBSD68) ..."
  if ! git clone --depth 1 https://github.com/BIDS/BSDS500 "$tmp/bsds" >/dev/null 2>&1; then
    echo "error: could not reach github.com; put BSDS500's images minus CBSD68's into $dest/CBSD432 by hand" >&2
    exit 1
  fi
  rm -rf "${dest:?}/CBSD432"
  "$PY" "$here/bsds_minus.py" "$tmp/bsds/BSDS500/data/images" "$dest/CBSD68" "$dest/CBSD432"
fi
if [ "$real" = 1 ]; then
  echo "fetching PolyU's real noisy images (non-commercial research use only: see its licence) ..."
  if ! git clone --depth 1 --filter=blob:none --sparse https://github.com/csjunxu/PolyU-Real-World-Noisy-Images-Dataset "$tmp/polyu" >/dev/null 2>&1; then
    echo "error: could not reach github.com; put PolyU's CroppedImages (<name>_real.JPG, <name>_mean.JPG) into $dest/PolyU by hand" >&2
    exit 1
  fi
  (cd "$tmp/polyu" && git sparse-checkout set CroppedImages >/dev/null && git checkout >/dev/null 2>&1)
  rm -rf "${dest:?}/PolyU"
  mkdir -p "$dest/PolyU"
  cp "$tmp/polyu/CroppedImages/"*_real.JPG "$tmp/polyu/CroppedImages/"*_mean.JPG "$dest/PolyU/"
  echo "  $dest/PolyU: $(ls "$dest/PolyU" | grep -c _real) pairs (python test.py --test_data PolyU --test_noiseL 0 scores them)"
fi
if [ "$dncnn3" = 1 ]; then
  echo "fetching the DnCNN authors' super-resolution and JPEG test sets (Set5, Set14, classic5, LIVE1) ..."
  if ! git clone --depth 1 --filter=blob:none --sparse https://github.com/cszn/DnCNN "$tmp/cszn" >/dev/null 2>&1; then
    echo "error: could not reach github.com; copy cszn/DnCNN's testsets/Set5, Set14, classic5 and LIVE1 into $dest by hand" >&2
    exit 1
  fi
  (cd "$tmp/cszn" && git sparse-checkout set testsets >/dev/null && git checkout >/dev/null 2>&1)
  for set in Set5 Set14 classic5 LIVE1; do
    rm -rf "${dest:?}/$set"
    cp -r "$tmp/cszn/testsets/$set" "$dest/$set"
    echo "  $dest/$set: $(ls "$dest/$set" | wc -l) images"
  done
fi
