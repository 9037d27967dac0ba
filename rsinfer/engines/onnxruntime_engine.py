"""ONNX Runtime on CPU: a session over the exported graph, tuned for a shared multi-core machine."""

from __future__ import annotations

import torch

from rsinfer.engines.base import Engine, EngineStatus, EngineUnavailableError, Precision
from rsinfer.engines.names import THREAD_WAITS, ThreadWait
from rsinfer.engines.signature import GraphSignature


def onnxruntime_status() -> EngineStatus:
    try:
        import onnx  # noqa: F401  (export needs it)
        import onnxruntime
    except ImportError as err:  # the onnx extra is missing, or one of its packages cannot load
        problem = (f"{err.name} is not installed" if isinstance(err, ModuleNotFoundError) and err.name
                   else f"onnxruntime/onnx cannot be imported ({err})")
        return EngineStatus("onnxruntime", False, f"{problem}; pip install 'rsinfer[onnx]'")
    return EngineStatus("onnxruntime", True, f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider, float32")




class OnnxRuntimeEngine(Engine):
    """An ONNX Runtime CPU session: `threads` intra-op threads waiting as `thread_wait` says, every graph optimisation
    enabled."""

    kind = "onnxruntime"

    def __init__(self, onnx_model: bytes, signature: GraphSignature, precision: Precision = "float32",
                 threads: int | None = None, thread_wait: ThreadWait = "spin") -> None:
        status = onnxruntime_status()
        if not status.available:
            raise EngineUnavailableError(f"engine 'onnxruntime' is not available: {status.reason}")
        if precision != "float32":
            raise ValueError(f"the onnxruntime engine runs float32 on CPU, got precision {precision!r}")
        if thread_wait not in THREAD_WAITS:
            raise ValueError(f"thread_wait must be one of {THREAD_WAITS}, got {thread_wait!r}")
        import onnxruntime as ort

        self.precision, self.signature = precision, signature
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if thread_wait == "spin" else "0")
        self.session = ort.InferenceSession(onnx_model, sess_options=options, providers=["CPUExecutionProvider"])

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        feed = {spec.name: x.detach().to("cpu", torch.float32).contiguous().numpy()
                for spec, x in zip(self.signature.inputs, inputs)}
        (out,) = self.session.run([self.signature.output.name], feed)
        return torch.from_numpy(out)
