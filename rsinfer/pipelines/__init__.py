"""Pipelines: every model family and product behind one contract, built by name from a picklable spec.

    from rsinfer import pipelines
    pipelines.names()                                        # ('ndwi', 'ndvi', 'decloud', 'translate', ...)
    pipe = pipelines.build(pipelines.PipelineSpec("decloud", "random:0", {"steps": 3, "engine": "onnxruntime"}))
    pipelines.run(pipe, {"s2": "s2.tif", "s1": "s1.tif"}, "clear.tif", tiling=pipelines.Tiling(256, 32))

- the contract (`contract`): named inputs, band identity (`bands`), output, tile function, provenance tags
  (`provenance`), options, `from_spec`;
- the registry (`registry`: `names`, `get`, `build`) and the runner (`runner.run`);
- the families' tensor-level classes: `CopGenBeta` (latent sampling), `DbCr` (bridge restoration), `CrossDiff`
  (pansharpening), `Tirsit` (time-series translation).

Nothing is imported until it is used: the command line lists pipelines and options without loading torch.
"""

from rsinfer.lazy_exports import lazy_exports
from rsinfer.pipelines.registry import build, entry, get, names

__getattr__, __dir__ = lazy_exports(__name__, {
    "PipelineSpec": "rsinfer.pipelines.spec",
    "run": "rsinfer.pipelines.runner",
    **dict.fromkeys(("ScenePipeline", "InputContract", "OutputContract", "ScenePlan"), "rsinfer.pipelines.contract"),
    **dict.fromkeys(("Tiling", "Window"), "rsinfer.tiling"),
    **dict.fromkeys(("OutputOptions", "check_output"), "rsinfer.io"),
    "CopGenBeta": "rsinfer.pipelines.copgen",
    "DbCr": "rsinfer.pipelines.dbcr",
    "CrossDiff": "rsinfer.pipelines.crossdiff",
    "Tirsit": "rsinfer.pipelines.tirsit",
})
__all__ = ["build", "entry", "get", "names", *__dir__()]
