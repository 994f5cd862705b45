"""Two nodes on one machine: two torchrun launchers (agents) that meet at a rendezvous, as two hosts would.

Each "node" has its own --patch_cache and --outf, as on machines without a shared disk: each builds its patches
once (its local rank 0), and only global rank 0 writes checkpoints. The gradient test runs ddp_grad_check.py
(one step's gradients on a fixed global batch) with the patches built through --patch_cache.
"""
import os
import subprocess
import sys

from conftest import ROOT, free_port

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
GRADS = os.path.join(ROOT, "tests", "ddp_grad_check.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
BUILT = "training set:"  # dataset.build_patches prints it once per build, from whichever rank builds
TINY = ["--batchSize", "16", "--num_of_layers", "5", "--tensorboard", "False", "--quiet"]
OUTPUTS = ("net.pth", "best_model.pth", "checkpoint.pth", "train.log")


def _two_nodes(node_cmd, timeout=240):
    """Run node_cmd(node) for nodes 0 and 1 at once; returns their (returncode, output) pairs."""
    procs = []
    for node in (0, 1):
        cmd, env, cwd = node_cmd(node)
        procs.append(subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in procs]
        return [(p.returncode, out) for p, out in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _c10d_launcher(port):
    """torchrun as one node of two, one CPU process, the dynamic (c10d) rendezvous of test/train_slurm.sh; with
    c10d torchrun ignores --node_rank and hands out the ranks itself, so either node may hold global rank 0."""
    return TORCHRUN + ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_id", "multinode",
                       "--rdzv_endpoint", "127.0.0.1:" + port]


def _one_build_each(caches, outputs):
    """Each node built its patches exactly once, into its own cache, and no rank waited for another node's."""
    for cache, output in zip(caches, outputs):
        assert output.count(BUILT) == 1, output
        assert "already holds these patches" not in output
        keys = os.listdir(cache)
        assert len(keys) == 1, keys
        assert sorted(os.listdir(os.path.join(cache, keys[0]))) == ["train.h5", "val.h5"]
    assert os.listdir(caches[0]) == os.listdir(caches[1])  # same data and flags: the same key


def test_two_nodes_gradients_equal_one_process(tiny_data, tmp_path):
    import torch
    one = subprocess.run([sys.executable, GRADS, str(tmp_path / "g1.pt"), "--data_path", tiny_data, "--patch_cache",
                          str(tmp_path / "cache_single"), "--outf", str(tmp_path / "single")], env=ENV,
                         capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stdout + one.stderr
    port = free_port()
    caches = [str(tmp_path / ("cache%d" % n)) for n in (0, 1)]
    results = _two_nodes(lambda n: (_c10d_launcher(port) + [
        GRADS, str(tmp_path / "g2.pt"), "--data_path", tiny_data, "--patch_cache", caches[n], "--outf",
        str(tmp_path / ("out%d" % n))], ENV, ROOT))
    assert [rc for rc, _ in results] == [0, 0], results
    _one_build_each(caches, [out for _, out in results])
    g1, g2 = torch.load(tmp_path / "g1.pt"), torch.load(tmp_path / "g2.pt")
    assert g1.keys() == g2.keys()
    for k in g1:  # test_distributed's bound: relative to each tensor's largest element
        largest = g1[k].abs().max()
        assert largest > 0, k
        assert (g1[k] - g2[k]).abs().max() <= 1e-4 * largest, k


def test_two_nodes_train_py_rank_0_alone_writes(tiny_data, tmp_path):
    import torch
    port = free_port()
    caches = [str(tmp_path / ("cache%d" % n)) for n in (0, 1)]
    outfs = [tmp_path / ("out%d" % n) for n in (0, 1)]
    results = _two_nodes(lambda n: (_c10d_launcher(port) + [
        os.path.join(ROOT, "train.py"), "--data_path", tiny_data, "--patch_cache", caches[n], "--outf", str(outfs[n]),
        "--max_steps", "3", *TINY], ENV, ROOT))
    assert [rc for rc, _ in results] == [0, 0], results
    _one_build_each(caches, [out for _, out in results])
    writers = [n for n in (0, 1) if outfs[n].is_dir() and os.listdir(outfs[n])]
    assert len(writers) == 1, writers  # the node that got global rank 0, and that one alone
    main = outfs[writers[0]]
    assert all((main / name).is_file() for name in OUTPUTS), os.listdir(main)
    output = results[writers[0]][1]
    assert "DnCNN on cpu x2" in output and output.count("] PSNR_val:") == 1
    assert "PSNR_val" not in results[1 - writers[0]][1]  # the other node's rank logs nothing
    ckpt = torch.load(main / "checkpoint.pth", weights_only=True)
    assert ckpt["step"] == 3


def test_two_nodes_through_the_8p_wrapper(tiny_data, tmp_path):
    """bash test/train_full_8p.sh on each node, two processes each, the static rendezvous (--master_addr/port):
    --node_rank 0 is global rank 0. Each node's output_root is its own (no shared disk), the patch cache in it."""
    port = free_port()
    roots = [tmp_path / ("node%d" % n) for n in (0, 1)]
    for root in roots:
        root.mkdir()

    def node(n):
        cmd = ["bash", os.path.join(ROOT, "test", "train_full_8p.sh"), "--data_path=" + tiny_data, "--nproc=2",
               "--nnodes=2", "--node_rank=%d" % n, "--master_addr=127.0.0.1", "--master_port=" + port,
               "--batch_size=16", "--num_of_layers", "5", "--tensorboard", "False"]
        return cmd, dict(ENV, max_steps="3", output_root=str(roots[n]), PYTHON=sys.executable), str(roots[n])
    results = _two_nodes(node)
    assert [rc for rc, _ in results] == [0, 0], results
    _one_build_each([str(root / "h5") for root in roots], [out for _, out in results])
    run0, run1 = (root / "0" / "ckpt_DnCNN_bs16_2p_acc" for root in roots)
    assert "DnCNN on cpu x4" in results[0][1]  # 2 nodes x 2 processes
    assert all((run0 / name).is_file() for name in OUTPUTS), os.listdir(run0)
    assert not run1.exists() or not os.listdir(run1)
    assert "Final Performance images/sec : NaN" in results[1][1]  # node 1 logs no training line
