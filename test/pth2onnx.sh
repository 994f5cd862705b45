#!/usr/bin/env bash
# Export a checkpoint to ONNX:  bash test/pth2onnx.sh --pth_path=CKPT [OUT.onnx]
source "$(dirname "$0")/common.sh"
[ -n "$pth_path" ] || { echo "error: --pth_path=CHECKPOINT is required" >&2; exit 2; }
out=${extra_args[0]:-$out_dir/${arch}.onnx}
exec "$PYTHON" "$cur_path/pth2onnx.py" "$pth_path" "$out" "${extra_args[@]:1}"
