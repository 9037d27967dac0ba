"""Networks in their official key layouts: `build(name, **overrides)` and `load(name, path)`."""

from rsinfer.models.registry import MODEL_NAMES, build, load

__all__ = ["MODEL_NAMES", "build", "load"]
