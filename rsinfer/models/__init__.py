"""Networks in their official key layouts: `build(name, **overrides)` and `load(name, path, **overrides)`."""

from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(("MODEL_NAMES", "build", "load"),
                                                            "rsinfer.models.registry"))
__all__ = __dir__()
