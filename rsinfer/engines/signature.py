"""What an exported graph takes and returns: input/output names with fixed and dynamic axes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor; an int axis is fixed, a str axis is dynamic and named ("batch", "height", "width")."""

    name: str
    axes: tuple[int | str, ...]

    def dynamic_axes(self) -> dict[int, str]:
        return {i: axis for i, axis in enumerate(self.axes) if isinstance(axis, str)}

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        """The concrete shape with the dynamic axes set from `sizes`."""
        return tuple(sizes[a] if isinstance(a, str) else a for a in self.axes)


@dataclass(frozen=True)
class GraphSignature:
    """Inputs (in call order) and the single output of a network served by an engine."""

    inputs: tuple[TensorSpec, ...]
    output: TensorSpec

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    def check(self, inputs: tuple) -> None:
        if len(inputs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs {self.input_names}, got {len(inputs)}")
        sizes: dict[str, int] = {}
        for spec, tensor in zip(self.inputs, inputs):
            if tensor.dim() != len(spec.axes):
                raise ValueError(f"input {spec.name!r} must have axes {spec.axes}, got shape {tuple(tensor.shape)}")
            for axis, size in zip(spec.axes, tensor.shape):
                if isinstance(axis, int) and size != axis:
                    raise ValueError(f"input {spec.name!r} must have axes {spec.axes}, got shape {tuple(tensor.shape)}")
                if isinstance(axis, str) and sizes.setdefault(axis, size) != size:
                    raise ValueError(f"axis {axis!r} of input {spec.name!r} is {size}, other inputs have {sizes[axis]}")
