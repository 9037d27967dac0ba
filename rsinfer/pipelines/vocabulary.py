"""Every choice a pipeline option or command-line flag offers, in one torch-free module (the registries of names).

Defined here: the pipelines' own vocabularies (`S1Scale`, `Fusion`, `IgnoredModalities`). Re-exported from where they
are defined: engines, precisions, thread waits (`rsinfer.engines.names`), op backends (`rsinfer.ops.names`), blend
modes (`rsinfer.tiling.names`), output dtypes and compressions (`rsinfer.io.names`), sampler names
(`rsinfer.samplers.names`), COP-GEN-Beta's modalities (`rsinfer.models.modalities`).
"""

from typing import Literal, get_args

from rsinfer.engines.names import ENGINE_KINDS, PRECISIONS, THREAD_WAITS, EngineKind, Precision, ThreadWait
from rsinfer.io.names import COMPRESSIONS, OUTPUT_DTYPES, Compression, OutputDtype
from rsinfer.models.modalities import MODALITIES
from rsinfer.ops.names import BACKEND_CHOICES, Backend
from rsinfer.samplers.names import BRIDGE_SAMPLERS, PF_ODE_SAMPLERS, BridgeSamplerName, PfOdeSampler
from rsinfer.tiling.names import BLEND_MODES, BlendMode

S1Scale = Literal["auto", "dB", "linear"]  # Sentinel-1 values; "auto": decided from the data
S1_SCALES: tuple[str, ...] = get_args(S1Scale)
Fusion = Literal["per-step", "per-tile"]  # how COP-GEN-Beta's latent tiles combine
FUSIONS: tuple[str, ...] = get_args(Fusion)
# how COP-GEN-Beta feeds the modalities it neither gets nor makes
IgnoredModalities = Literal["marginal", "official-noise-t0"]
IGNORED_MODES: tuple[str, ...] = get_args(IgnoredModalities)
FillGapTask = Literal["sar2rgb", "rgb2swir"]  # TIRSIT's band presets (the paper's two experiments)
FILL_GAP_TASKS: tuple[str, ...] = get_args(FillGapTask)

__all__ = ["ENGINE_KINDS", "PRECISIONS", "THREAD_WAITS", "EngineKind", "Precision", "ThreadWait", "COMPRESSIONS",
           "OUTPUT_DTYPES", "Compression", "OutputDtype", "MODALITIES", "BACKEND_CHOICES", "Backend", "BRIDGE_SAMPLERS",
           "PF_ODE_SAMPLERS", "BridgeSamplerName", "PfOdeSampler", "BLEND_MODES", "BlendMode", "S1Scale", "S1_SCALES",
           "Fusion", "FUSIONS", "IgnoredModalities", "IGNORED_MODES", "FillGapTask", "FILL_GAP_TASKS"]
