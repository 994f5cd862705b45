#!/usr/bin/env bash
# Denoise a folder of images:  bash test/demo.sh [--pth_path=CKPT] [--data_path=IMAGES] [--noiseL=25] [demo.py flags]
source "$(dirname "$0")/common.sh"
args=(--test_noiseL "$noiseL" --out "$out_dir/demo")
[ -n "$pth_path" ] && args+=(--demo_pth_path "$pth_path")
[ -n "$data_path" ] && args+=(--demo_img_path "$data_path")
exec "$PYTHON" "$cur_path/demo.py" "${args[@]}" "${extra_args[@]}"
