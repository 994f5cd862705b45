#!/usr/bin/env bash
# make device-check: test.py's reference figures at fp32 and half precision, training with a save and a resume,
# host syncs per step, 2-process DDP (2+ devices) and bench.py on a CUDA GPU or an Ascend NPU; one table.
#   bash test/device_check.sh [--dry-run] [--work DIR]      (DRY_RUN=1: print the commands only)
# Without a device: one line, exit 0. PYTHON picks the interpreter: default .venv/bin/python, else python3.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
source "$here/env.sh"  # Ascend's CANN environment where it is installed; nothing elsewhere
cd "$repo" && exec "$PYTHON" "$here/device_check.py" "$@"
