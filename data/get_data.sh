#!/usr/bin/env bash
# Fetch the standard training and test sets:   bash data/get_data.sh [DEST] [--adnet] [--color]
#   DEST/train   400 BSD images (180x180)  -- SaoYan/DnCNN-PyTorch's data folder
#   DEST/Set12   12 classic test images
#   DEST/Set68   BSD68 test images
# --adnet also links DEST/BSD68 -> Set68 (ADNet's name for it). ADNet's Waterloo training set
# (pristine_images_gray, 4,744 images) must be downloaded from its site by hand.
# --color also fetches the ADNet authors' colour test sets (hellloxiaotian/ADNet color/data):
#   DEST/CBSD68 (68 BMP), DEST/Kodak24 (24 PNG), DEST/McMaster (18 PNG). Their colour training set
#   (pristine_images_color) is Waterloo's too: by hand, as DEST/pristine_images_color.
set -euo pipefail
dest=$(dirname "$0"); adnet=0; color=0
for arg in "$@"; do
  case "$arg" in --adnet) adnet=1;; --color|--colour) color=1;; *) dest=$arg;; esac
done
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
