"""The raster I/O edge: the only package that imports rasterio (GDAL).

- `Grid`: CRS, transform, shape, nodata and band descriptions of the output grid; `grid_of(dataset)`.
- `RasterSource` + `InputSpec`: an input seen on the output grid, read by windows at its own scale, resampled on the
  fly (WarpedVRT) when its CRS, resolution, alignment or extent differ; float32 values plus a validity mask.
- `RasterWriter` / `write_raster`: tiled, compressed GeoTIFF or COG, written to a temporary file and renamed;
  `OutputOptions(dtype, nodata, cog, overwrite, compress)`: how an output is written.
- `RasterInputError`: a bad input, naming the file and the problem; `raster_info(path)`: bands, types, shape.
- `gdal_environment()`: GDAL's block cache bounded for the duration of a job.
"""

from rsinfer.lazy_exports import lazy_exports
from rsinfer.io.names import (COMPRESSIONS, OUTPUT_DTYPES, RESAMPLINGS, Compression, OutputDtype,
                              Resampling)

__getattr__, __dir__ = lazy_exports(__name__, {
    "gdal_environment": "rsinfer.io.environment",
    "Grid": "rsinfer.io.grid",
    **dict.fromkeys(("SUPPORTED_DTYPES", "InputSpec", "RasterInfo", "RasterInputError", "RasterLike", "RasterSource",
                     "check_bands", "grid_of", "open_raster", "raster_info", "raster_tags", "read_decimated"),
                    "rsinfer.io.source"),
    **dict.fromkeys(("BLOCK", "OutputOptions", "RasterWriter", "check_dtype", "check_output", "output_nodata",
                     "write_raster"), "rsinfer.io.writer"),
})
__all__ = ["COMPRESSIONS", "OUTPUT_DTYPES", "RESAMPLINGS", "Compression", "OutputDtype", "Resampling", *__dir__()]
