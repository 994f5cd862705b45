"""Which device a process runs on, its host set-up (threads, malloc) and the distributed process group; the
Ascend ports' launch flags."""
import datetime
import os

import torch

from utils import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "npu")


def add_device_flag(parser):
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)


def npu_available():
    try:
        import torch_npu  # noqa: F401  (registers the 'npu' device)
    except Exception:
        return False
    return hasattr(torch, "npu") and torch.npu.is_available()


def device_index(kind, count, local_rank=0, device_id=None):
    """Which of `count` devices this process takes: --DeviceID / --device_id (or, on NPU, ASCEND_DEVICE_ID)
    when given, else the local rank."""
    if device_id is None:
        return local_rank % count
    if device_id >= count:
        raise UserError("--DeviceID %d: this machine has %d %s device(s)" % (device_id, count, kind))
    return device_id


def ascend_device_id(env=None):
    """ASCEND_DEVICE_ID as the Ascend wrappers export it, or None."""
    value = (os.environ if env is None else env).get("ASCEND_DEVICE_ID", "")
    return int(value) if value.strip().isdigit() else None


def select_device(name="auto", local_rank=0, device_id=None):
    """The torch device to run on; device_id (the legacy --DeviceID) picks the accelerator, else the local rank.

    A one-process NPU run without --DeviceID takes ASCEND_DEVICE_ID, as the Ascend ports' scripts did.
    """
    if name == "auto":
        name = "npu" if npu_available() else "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available")
        torch.cuda.set_device(device_index("CUDA", torch.cuda.device_count(), local_rank, device_id))
        return torch.device("cuda", torch.cuda.current_device())
    if name == "npu":
        if not npu_available():
            raise UserError("--device npu: torch_npu (with Ascend CANN) is not importable or sees no NPU")
        if device_id is None and int(os.environ.get("WORLD_SIZE", "1")) == 1:
            device_id = ascend_device_id()
        torch.npu.set_device(device_index("NPU", torch.npu.device_count(), local_rank, device_id))
        return torch.device("npu", torch.npu.current_device())
    if name != "cpu":
        raise UserError("unknown device %r (auto, cpu, cuda, npu)" % name)
    return torch.device("cpu")


def set_cpu_threads(local_world_size=1, threads=0):
    if threads:
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world_size)))


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keeps_freed_memory(device_type, libc_name, training):
    """Whether this process should tell malloc to keep freed blocks: a training run on the CPU with glibc's
    malloc. glibc maps every block over its mmap threshold (at most 32 MiB) afresh and unmaps it on free, so
    each activation of a training step is page-faulted in again at every step; inference is left alone, where
    keeping the blocks raised a large photo's peak memory (figures: docs/performance.md, `bench.py --only
    malloc`)."""
    return training and device_type == "cpu" and libc_name == "glibc"


def keep_freed_memory(libc=None):
    """Large blocks from the heap, and freed memory kept there for the next step rather than returned to the
    kernel (the process's resident memory stays at its peak; the peak itself does not grow). glibc still
    maps a block from a worker thread's arena when its heap is full. True when malloc took both settings."""
    import ctypes
    try:
        libc = libc or ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError):
        return False


def setup_host(device, local_world_size=1, threads=0, training=False):
    """The process's host set-up, one for train, test, demo and bench: intra-op threads (`threads`, else the
    cores shared among this machine's processes unless OMP_NUM_THREADS says otherwise) and, for CPU training,
    malloc keeping freed memory. Returns whether malloc was tuned."""
    set_cpu_threads(local_world_size, threads)
    return keeps_freed_memory(device.type, libc_name(), training) and keep_freed_memory()


def libc_name():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").split()[0]  # "glibc 2.36"
    except (AttributeError, ValueError, OSError, IndexError):
        return ""


def dist_env():
    """(rank, local_rank, world_size) from torchrun's variables, or the ADNet port's RANK_ID."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", os.environ.get("RANK_ID", "0")))
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK_ID", str(rank))))
    return rank, local, world


def init_distributed(device, timeout_s=600):
    """Join the process group torchrun set up; backend follows the device."""
    import torch.distributed as dist
    rank, local, world = dist_env()
    if world <= 1:
        return rank, local, world
    backend = {"cuda": "nccl", "npu": "hccl"}.get(device.type, "gloo")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout, store=restart_store(timeout))
    return rank, local, world


def restart_store(timeout, env=None):
    """On one node under torchrun, the agent's store seen through a prefix per restart; None otherwise.

    torchrun's agent keeps one store for the whole job (TORCHELASTIC_USE_AGENT_STORE) and hands every restart
    the same address: without a fresh prefix the restarted ranks read what the failed attempt left there
    (gloo's peer addresses, NCCL's unique id) and wait for peers that are gone, past any timeout (torch
    issue 135712). Each node's agent counts its own restarts, so on several nodes the prefixes could
    disagree: there the launchers set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (a new store per rendezvous)."""
    import torch.distributed as dist
    env = os.environ if env is None else env
    if env.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or int(env.get("GROUP_WORLD_SIZE", "1")) != 1:
        return None
    store = dist.TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), int(env["WORLD_SIZE"]), is_master=False,
                          timeout=timeout)
    return dist.PrefixStore("denoise/attempt_%s" % env.get("TORCHELASTIC_RESTART_COUNT", "0"), store)


def device_sync(device):
    """Wait for the device's queued work (timing only: the training step never calls it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize(device)
