"""The raster I/O edge: the only package that imports rasterio (GDAL).

- `Grid`: CRS, transform, shape, nodata and band descriptions of the output grid; `grid_of(dataset)`.
- `RasterSource` + `InputSpec`: an input seen on the output grid, read by windows at its own scale, resampled on the
  fly (WarpedVRT) when its CRS, resolution, alignment or extent differ; float32 values plus a validity mask.
- `RasterWriter` / `write_raster`: tiled, compressed GeoTIFF or COG, written to a temporary file and renamed.
- `RasterInputError`: a bad input, naming the file and the problem.
- `gdal_environment()`: GDAL's block cache bounded for the duration of a job.
"""

from rsinfer.io.environment import gdal_environment
from rsinfer.io.grid import Grid
from rsinfer.io.source import (SUPPORTED_DTYPES, InputSpec, RasterInputError, RasterLike, RasterSource, Resampling,
                               check_bands, grid_of, open_raster)
from rsinfer.io.writer import BLOCK, OutputDtype, RasterWriter, check_dtype, check_output, output_nodata, write_raster

__all__ = ["Grid", "grid_of", "InputSpec", "Resampling", "RasterSource", "RasterLike", "RasterInputError",
           "SUPPORTED_DTYPES", "BLOCK", "check_bands", "open_raster", "OutputDtype", "RasterWriter",
           "check_dtype", "check_output", "output_nodata", "write_raster", "gdal_environment"]
