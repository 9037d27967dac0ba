"""rsinfer: inference runtime for remote-sensing generative models.

Importing rsinfer changes no global torch state. Submodules: `ops` (backend-dispatched kernels), `models`
(networks in the official key layouts), `samplers` (pure functions), `scene` (tiled GeoTIFF processing),
`pipelines` (model-specific composition), `engines` (exported/compiled runners), `cli`.
"""

__version__ = "0.1.0"
