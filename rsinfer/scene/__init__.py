"""The scene engine: any number of input rasters of any size in, one georeferenced raster out, in bounded memory.

It knows tiles, grids, masks and blending — nothing of diffusion.

`run_scene(fn, inputs, output, grid=None, tile=256, overlap=32, blend="cosine", batch_size=4, bands=None,
nodata=None, dtype="float32", cog=False, overwrite=False, progress=True, *, tiling=None, output_options=None,
tags=None, outputs=None, output_scale=1.0) -> OutputSummary` — `tiling=Tiling(...)` and
`output_options=OutputOptions(...)` are the value-object forms of the tiling and writing keywords; `output_scale` = 1/f
writes an output grid f times coarser than the grid input's.

- **fn**: fn({name: (B, C_i, h_i, w_i) float32 CPU tensor}) -> (B, C_out, tile, tile) on the output grid; a
  `TileFunction` is called with `Tiles` instead (the same tensors plus each input's mask, the joint validity and the
  tiles' windows on the output grid: what window-seeded noise and whole-scene jobs need). Optional
  attributes: `input_specs` {name: InputSpec(scale, resampling)} — each input read at its own scale over the same
  ground footprint (h_i = tile · scale; e.g. 0.25 for a 4x coarser multispectral input), bilinear for continuous
  data, nearest for masks/labels; `band_descriptions`; `output_tags`; `out_channels`.
- **Grid**: the output uses the CRS, transform and shape of input `grid` (default: the first). Other inputs are read
  directly when on that grid, else resampled on the fly through a GDAL WarpedVRT; an input that does not overlap the
  grid is an error, partial overlap leaves nodata.
- **Tiles**: `rsinfer.tiling.plan_windows` (border windows shifted inward); a tile larger than the scene shrinks to
  the scene's longer side, rounded up to the multiple the inputs' scales (and `fn.tile_multiple`) need
  (`fit_tiling`); a scene smaller than that is padded (as nodata) to one tile and cropped back. `tile > 2·overlap`.
  `Tiling(tile=None)`: the whole grid as one tile (for
  jobs that need the whole scene; memory then grows with it).
- **Coarser output**: `output_scale=1/f` writes on the grid input's grid coarsened by an integer f (same origin,
  f-times pixels; e.g. one embedding per window); tile and overlap are multiples of f, fn returns tiles of tile/f
  pixels, and an output cell is valid when any of its input pixels is (`rsinfer.scene.engine`).
- **Nodata**: a pixel is valid when every band of every input is valid (not nodata, not NaN, covered). All-nodata
  tiles are not run (written as nodata); in partly invalid tiles fn sees each band's tile mean in place of invalid
  pixels, and the output is nodata there. Output nodata: `nodata`, else the grid input's, else NaN (float dtypes). A
  valid pixel that fn returns as NaN or Inf fails the run (`InputDataError`, naming the pixel); a valid value equal to
  the nodata value is moved one step off it, so no valid pixel reads back as nodata.
- **Blending**: weighted overlap-add through `rsinfer.ops.accumulate`, normalised by the accumulated weight; "crop"
  keeps each tile's interior (exact for a receptive field ≤ overlap/2). See `rsinfer.tiling.blend`.
- **Streaming**: windows are read up to two batches ahead on a reader thread; fn runs on the calling thread; a
  merge thread (single-threaded torch) blends its outputs and writes each 256 × 256 output block as soon as every
  tile touching it is done, so memory stays at about one row of blocks.
- **Output**: tiled (256 × 256) ZSTD GeoTIFF with predictor, or a DEFLATE COG with overviews when `cog=True`, band
  descriptions and nodata; written to a temporary file beside `output` and renamed when complete; errors and
  interrupts leave no file; an existing output needs `overwrite=True`.
- **Progress**: a status line on a terminal's stderr, log records otherwise, nothing with `progress=False`.

Whole-scene helpers, for jobs that hold the grid in memory: `read_scene(inputs, grid=None, bands=None, specs=None)
-> SceneArrays` (arrays, masks, joint validity, `Grid`) and `write_raster(array (C, H, W), grid, output, nodata=None,
dtype="float32", descriptions=None, tags=None, cog=False, overwrite=False)` (atomic, NaN → nodata).
"""

from rsinfer.lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Grid", "InputSpec", "OutputOptions", "RasterInputError", "write_raster"), "rsinfer.io"),
    **dict.fromkeys(("SceneArrays", "read_scene"), "rsinfer.scene.arrays"),
    **dict.fromkeys(("OutputSummary", "run_scene"), "rsinfer.scene.engine"),
    **dict.fromkeys(("PRODUCTS", "product"), "rsinfer.scene.products"),
    **dict.fromkeys(("TileFunction", "Tiles"), "rsinfer.scene.tiles"),
    "Tiling": "rsinfer.tiling",
})
__all__ = __dir__()
