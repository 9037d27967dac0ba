"""`plot_latencies`: each engine's latency histogram and empirical CDF, side by side, from a benchmark document
(matplotlib, the ``plots`` extra; drawn off-screen)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def plot_latencies(document: Mapping[str, Any], path: str | os.PathLike) -> None:
    """A PNG (or any format matplotlib infers from the name) of the document's latencies per engine."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'rsinfer[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario, spec = document["scenario"], document["pipeline"]["spec"]
    figure, (histogram, cdf) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for engine in document["engines"]:
        latencies = sorted(engine["latencies_ms"])
        label = f"{engine['engine']} (p99 {engine['latency_ms']['p99']:.1f} ms)"
        histogram.hist(latencies, bins=min(50, max(5, len(latencies) // 4)), alpha=0.5, label=label)
        cdf.step(latencies, [(i + 1) / len(latencies) for i in range(len(latencies))], where="post", label=label)
    if scenario["p99_bound_ms"] is not None:
        for axes in (histogram, cdf):
            axes.axvline(scenario["p99_bound_ms"], color="black", linestyle="--", label="p99 bound")
    histogram.set(xlabel="latency (ms)", ylabel="queries", title="histogram")
    cdf.set(xlabel="latency (ms)", ylabel="fraction of queries ≤ latency", title="empirical CDF", ylim=(0, 1.02))
    for axes in (histogram, cdf):
        axes.legend(fontsize="small")
    figure.suptitle(f"{spec['name']}, {scenario['name']}, tile {document['pipeline']['tile']}, "
                    f"batch {document['pipeline']['batch_size']}")
    figure.savefig(path, dpi=100)
    plt.close(figure)
