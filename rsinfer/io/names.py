"""The raster-output vocabulary (importable without GDAL): output data types and compression codecs."""

from typing import Literal, get_args

OutputDtype = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]
OUTPUT_DTYPES: tuple[str, ...] = get_args(OutputDtype)
Compression = Literal["zstd", "deflate", "lzw", "none"]
COMPRESSIONS: tuple[str, ...] = get_args(Compression)
Resampling = Literal["bilinear", "nearest"]
RESAMPLINGS: tuple[str, ...] = get_args(Resampling)
