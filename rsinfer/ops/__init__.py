"""The ops every model, sampler and the scene engine call; the only place that names a backend.

Each function has one signature across backends; `rsinfer.ops.reference` holds the specification and states the math.
"""

from rsinfer.lazy_exports import lazy_exports
from rsinfer.ops.names import BACKEND_CHOICES, BACKENDS, OPS, Backend

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("BackendStatus", "BackendUnavailableError", "backend_status", "backend_statuses",
                     "current_backend", "use_backend", "implementation"), "rsinfer.ops.backends"),
    **dict.fromkeys(OPS, "rsinfer.ops.functions"),
})
__all__ = ["Backend", "BACKEND_CHOICES", "BACKENDS", "OPS", *__dir__()]
