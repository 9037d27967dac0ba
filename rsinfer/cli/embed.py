"""`rsinfer embed`: one Atomizer embedding per window of any optical scene, for archive search.

    rsinfer embed --model atomizer (--weights CKPT --config CONFIG | --random-weights) --input s2=SCENE.tif \\
        --out emb.tif [--sensor landsat-8 --bands B2,B3,B4] [--tile 120]

The output grid is the scene's coarsened by the window side: output pixel (i, j) holds the D-dimensional pooled
latent of the --tile × --tile window at rows i·tile, columns j·tile (windows side by side; those reaching past the
scene's edge are encoded from their valid pixels), as D float32 bands embedding_000, ... Weights, config and bands
as for `rsinfer classify`.
"""

from __future__ import annotations

import argparse

from rsinfer.cli.classify import add_parser


def register(sub: argparse._SubParsersAction) -> None:
    add_parser(sub, "embed", "pooled latent embedding per window of any optical scene (Atomizer)", __doc__)
