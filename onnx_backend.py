"""ONNX export of a model (BN folded, dynamic sizes) and an ONNX Runtime session that stands in for it."""
import hashlib
import os
import warnings

import torch

from models import fold_batchnorm
from utils import temp_path

def onnxruntime_available():
    import importlib.util
    return importlib.util.find_spec("onnxruntime") is not None


def export_onnx(model, out_path, opset=17, sample_size=64):
    """The network itself, BN folded, fp32, dynamic batch/height/width; written atomically."""
    net = fold_batchnorm(model).float().eval().cpu()
    sample = torch.rand(1, net.channels + int(net.noise_map), sample_size, sample_size)  # FDnCNN: the map too
    tmp = temp_path(out_path)
    with warnings.catch_warnings():  # the TorchScript exporter handles dynamic H/W of these plain CNNs best
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (sample,), tmp, input_names=["input"], output_names=["output"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                        "output": {0: "batch", 2: "height", 3: "width"}},
                          dynamo=False)
    os.replace(tmp, out_path)
    return out_path


def onnx_cache_dir():
    return os.environ.get("DENOISE_ONNX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dncnn-adnet-onnx")


def cached_onnx(model):
    """The ONNX file of a model, exported once per weights (cached under a digest of them and the exporter)."""
    digest = hashlib.sha256(("%s %s %s %s" % (type(model).__name__, torch.__version__, model.predicts_noise,
                                              model.noise_map)).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = onnx_cache_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, digest.hexdigest()[:24] + ".onnx")
    if not os.path.isfile(path):
        export_onnx(model, path)
    return path


class OnnxRuntimeNet(torch.nn.Module):
    """An ONNX Runtime session with the face denoise_image expects of a network: forward(x) gives what the
    torch model gives; the torch model stays inside (never run) for its channels and receptive radius."""

    # ONNX Runtime (its memory arena on) holds more per tile than torch: its automatic tiles count five feature
    # maps, not two, to stay under the same memory budget (measured: docs/inference.md)
    live_feature_maps = 5

    def __init__(self, model, threads=None):
        import onnxruntime as ort
        super().__init__()
        self.model = model.eval()
        self.channels, self.predicts_noise, self.noise_map = model.channels, model.predicts_noise, model.noise_map
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # activations that fall into the denormal range run the CPU's slow path (FDnCNN's do: docs/performance.md);
        # flushed to zero they change no output beyond float rounding
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        self.session = ort.InferenceSession(cached_onnx(model), options, providers=["CPUExecutionProvider"])

    def forward(self, x):
        out = self.session.run(None, {"input": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)
