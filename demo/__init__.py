"""The main job's helpers (`make run`): held-out inputs written as GeoTIFFs, quality tables and side-by-side previews.

Outside the runtime package, like train/: it imports `rsinfer` and `train`, and `rsinfer` never imports it. Every
model runs through the `rsinfer` command line in between (the Makefile shows each command), so the main job shows
exactly what a user would type:

    python -m demo.heldout --out out        # the held-out inputs (and references) under out/
    rsinfer decloud ... / rsinfer pansharpen ... / rsinfer translate ...
    python -m demo.report --out out         # the quality tables (also out/quality.md) and the previews
"""
