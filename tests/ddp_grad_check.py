"""Helper for test_distributed and test_multinode: gradients of one step on a fixed global batch, run under
torchrun or alone.  python ddp_grad_check.py OUT_FILE TRAIN_FLAGS... (where the patches are: --h5_dir, or
--data_path and --patch_cache; and --outf)."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from training import patches_to_device  # noqa: E402
from train import Trainer, parse_args  # noqa: E402


def main(out_file, train_flags):
    """One optimizer step at lr 0 on the first 8 patches (the global batch), split over the ranks; rank 0 saves
    the gradients."""
    args = parse_args(train_flags + ["--amp", "none", "--num_of_layers", "5", "--batchSize", "8",
                                     "--tensorboard", "False", "--quiet"])
    trainer = Trainer(args)
    clean = patches_to_device(trainer.batches.patches[:8], trainer.device)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(123))
    per_rank = 8 // trainer.world
    mine = slice(trainer.rank * per_rank, (trainer.rank + 1) * per_rank)
    trainer.net.eval()  # batch-norm in eval mode: each rank's statistics would differ otherwise
    trainer.optimize(clean[mine], noisy[mine], lr=0.0)
    if trainer.rank == 0:
        torch.save({k: p.grad.clone() for k, p in trainer.model.named_parameters()}, out_file)
    if trainer.world > 1:
        torch.distributed.destroy_process_group()
        sys.stdout.flush()
        os._exit(0)  # as train.py: the native teardown after a gloo process group can abort


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
