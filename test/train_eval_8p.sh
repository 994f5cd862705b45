#!/usr/bin/env bash
# Evaluate the weights of a training run (default: the newest ckpt_ARCH_* under test/output/$ASCEND_DEVICE_ID).
#   bash test/train_eval_8p.sh --data_path=DIR [--pth_path=CKPT] [--test_data=Set68] [--noiseL=25]
source "$(dirname "$0")/common.sh"
require_data_path
if [ -z "$pth_path" ]; then
  pth_path=$(ls -dt "$out_dir"/ckpt_${arch}_* 2>/dev/null | head -1)
  [ -n "$pth_path" ] || { echo "error: no 8p training output in $out_dir; pass --pth_path=CKPT" >&2; exit 2; }
fi
exec bash "$test_path_dir/eval_1p.sh" --pth_path="$pth_path" --data_path="$data_path" --test_data="$test_data" \
    --noiseL="$noiseL" --device_id="$device_id" "${extra_args[@]}"
