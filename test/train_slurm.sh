#!/usr/bin/env bash
#SBATCH --job-name=denoise-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-task=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
# Multi-node training under Slurm: one task per node, each a torchrun agent that starts the node's processes;
# the agents meet at a c10d rendezvous on the job's first node. train.py's flags are passed through.
#
#   sbatch test/train_slurm.sh --data_path=/data/dncnn --outf runs/dncnn-b --mode B --save_every 500 --resume
#   sbatch --nodes=4 --gpus-per-task=4 test/train_slurm.sh ...          # the #SBATCH lines are defaults
#   DRY_RUN=1 SLURM_JOB_NODELIST=n1,n2 SLURM_JOB_NUM_NODES=2 SLURM_JOB_ID=7 NPROC_PER_NODE=8 \
#       bash test/train_slurm.sh --data_path=...                       # print each node's command, run nothing
#
# This script's own flags (all else goes to train.py): --dry-run, --nproc_per_node=N, --rdzv_port=P,
# --max_restarts=R. The same as environment variables: DRY_RUN=1, NPROC_PER_NODE, RDZV_PORT, MAX_RESTARTS;
# PYTHON picks the interpreter (default: .venv/bin/python of the project, else python3).
# Processes per node: --nproc_per_node, else Slurm's SLURM_GPUS_ON_NODE / SLURM_GPUS_PER_TASK, else the
# devices (CUDA or NPU) that the first node sees, else 1. Ascend NPUs are often not Slurm GRES: set NPROC_PER_NODE.
# With the c10d rendezvous torchrun numbers the nodes itself: global rank 0, the one that writes --outf, may be
# on any node. Without a disk shared by the nodes give --outf a path every node has; --patch_cache a local disk
# (each node's local rank 0 builds its patches once; on a shared disk the nodes' builders write the same files).
# --max_restarts R > 0 restarts every node's processes after a failure: add --resume and --save_every N so that
# the restarted processes continue from OUTF/checkpoint.pth.
set -euo pipefail

dry_run=${DRY_RUN:-0}
nproc=${NPROC_PER_NODE:-}
max_restarts=${MAX_RESTARTS:-0}
rdzv_port=${RDZV_PORT:-}
train_args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run|--dry_run) dry_run=1;;
    --nproc_per_node=*|--nproc=*) nproc=${arg#*=};;
    --max_restarts=*|--max-restarts=*) max_restarts=${arg#*=};;
    --rdzv_port=*) rdzv_port=${arg#*=};;
    *) train_args+=("$arg");;
  esac
done
[ "$dry_run" = 0 ] || [ "$dry_run" = "" ] || dry_run=1

# sbatch runs a copy of this script from its spool folder: the project is where the job was submitted from
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$here/../train.py" ]; then repo=$(cd "$here/.." && pwd)
elif [ -n "${SLURM_SUBMIT_DIR:-}" ] && [ -f "$SLURM_SUBMIT_DIR/train.py" ]; then repo=$SLURM_SUBMIT_DIR
else echo "error: cannot find train.py: submit from the project folder (sbatch test/train_slurm.sh ...)" >&2; exit 2
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi

nodelist=${SLURM_JOB_NODELIST:-${SLURM_NODELIST:-}}
job_id=${SLURM_JOB_ID:-${SLURM_JOBID:-}}
if [ -z "$nodelist" ] || [ -z "$job_id" ]; then
  echo "error: no Slurm job here (SLURM_JOB_NODELIST, SLURM_JOB_ID): submit with sbatch, or for a dry run set them" \
       "(SLURM_JOB_NODELIST as a comma list: n1,n2)" >&2
  exit 2
fi
# node names: scontrol expands Slurm's compressed lists (n[01-04]); without it the list must be plain: n1,n2
if command -v scontrol >/dev/null 2>&1; then
  mapfile -t nodes < <(scontrol show hostnames "$nodelist")
else
  case "$nodelist" in
    *"["*) echo "error: $nodelist is compressed and scontrol is absent: give a comma list" >&2; exit 2;;
  esac
  IFS=, read -r -a nodes <<< "$nodelist"
fi
nnodes=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-${#nodes[@]}}}
if [ "$nnodes" != "${#nodes[@]}" ]; then
  echo "error: SLURM_JOB_NUM_NODES=$nnodes but the node list names ${#nodes[@]} nodes: ${nodes[*]}" >&2; exit 2
fi
head_node=${nodes[0]}
# one port per job: two jobs whose first node is the same do not meet at one rendezvous
[ -n "$rdzv_port" ] || rdzv_port=$((29500 + job_id % 1000))

if [ -z "$nproc" ]; then
  gpus=${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_TASK:-}}
  gpus=${gpus##*:}  # --gpus-per-task=a100:8 gives "a100:8"
  if [ -n "$gpus" ]; then nproc=$gpus
  else
    nproc=$("$PYTHON" - <<'PY' 2>/dev/null || echo 0
import torch
try:
    import torch_npu  # noqa: F401
    print(torch.npu.device_count()); raise SystemExit
except ImportError:
    pass
print(torch.cuda.device_count() if torch.cuda.is_available() else 0)
PY
)
    [ "$nproc" -gt 0 ] || nproc=1
  fi
fi
case "$nproc$max_restarts$rdzv_port" in
  *[!0-9]*) echo "error: --nproc_per_node, --max_restarts and --rdzv_port take numbers" >&2; exit 2;;
esac

# TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: a store of its own for each rendezvous round. torchrun's agents otherwise
# keep one store for all rounds, and after a restart the new processes read the keys the failed ones left there
# (gloo's peer addresses, NCCL's unique id): init_process_group fails or hangs (torch issue 135712).
cmd=(env TORCH_DISABLE_SHARE_RDZV_TCP_STORE="${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}"
     "$PYTHON" -m torch.distributed.run --nnodes "$nnodes" --nproc_per_node "$nproc" --rdzv_id "$job_id"
     --rdzv_backend c10d --rdzv_endpoint "$head_node:$rdzv_port" --max-restarts "$max_restarts"
     "$repo/train.py" "${train_args[@]}")
launch=(srun --nodes="$nnodes" --ntasks="$nnodes" --ntasks-per-node=1 --kill-on-bad-exit=1)

quoted() { printf '%q ' "$@" | sed 's/ $//'; }
echo "# $nnodes nodes x $nproc processes, c10d rendezvous at $head_node:$rdzv_port (job $job_id)," \
     "max restarts $max_restarts"
echo "launch: $(quoted "${launch[@]}" "${cmd[@]}")"
for node in "${nodes[@]}"; do
  echo "$node: $(quoted "${cmd[@]}")"
done
[ "$dry_run" = 1 ] && exit 0

cd "$repo"
source "$repo/test/env.sh"  # Ascend's CANN environment where it is installed; nothing elsewhere
# CPU threads per process: the task's CPUs shared among the node's processes
threads=$(( ${SLURM_CPUS_PER_TASK:-$nproc} / nproc ))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( threads > 0 ? threads : 1 ))}
exec "${launch[@]}" "${cmd[@]}"
