# The two README commands: `make run` (the main job on bundled real data) and `make test`.
# Both create .venv with the exact tested set (constraints.txt), build the extension, then run. Neither needs root:
# only `make test` tries to install gdalinfo, the tests' independent reader (see `gdal`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsinfer-installed
CONSTRAINTS := constraints.txt
DIST ?= dist
DATA := ../shared/data
OUT ?= out

.PHONY: setup build run test test-packaging wheel lint bench mutate gdal clean

setup: $(STAMP)

# torch is installed first: the extension builds against it without build isolation. constraints.txt pins every
# package (pyproject.toml only bounds them), so this environment is the one the tests ran in.
$(STAMP): pyproject.toml setup.py CMakeLists.txt $(CONSTRAINTS) $(wildcard csrc/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(CONSTRAINTS) pip setuptools wheel
	$(BIN)/pip install -q -c $(CONSTRAINTS) torch pybind11
	$(BIN)/pip install -q -c $(CONSTRAINTS) --no-build-isolation -e '.[all]'
	touch $@

# gdalinfo (Debian's gdal-bin) is only the tests' independent GeoTIFF reader. Installed when missing and possible (as
# root, or with sudo that needs no password); otherwise a loud warning, and the tests skip their gdalinfo cross-checks
# with that reason, unless RSINFER_REQUIRE_GDALINFO=1 (CI, .ci/run) makes both this target and those checks fail.
gdal:
	@command -v gdalinfo >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ]; then as_root=; elif sudo -n true 2>/dev/null; then as_root="sudo -n"; else as_root=no; fi; \
	if [ "$$as_root" != no ] && $$as_root apt-get update -q && $$as_root apt-get install -y -q gdal-bin; then exit 0; fi; \
	echo "WARNING: gdalinfo (Debian gdal-bin) is missing and could not be installed (that needs root or" \
	     "password-less sudo, and apt): the tests will SKIP their gdalinfo cross-checks" >&2; \
	test -z "$$RSINFER_REQUIRE_GDALINFO"

build: setup
	$(BIN)/python setup.py build_ext --inplace

# Packaging tests (fresh venvs, a wheel) run in one xdist worker, so they build the wheel once.
test: setup gdal
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

# Only the packaging tests: a source install and a wheel install in fresh venvs, the constraints, `make run` without
# root (a few minutes: they install torch into fresh venvs and build the extension twice).
test-packaging: setup
	$(BIN)/python -m pytest -q tests/packaging

# A wheel in $(DIST)/: the extension compiled against the venv's torch (it refuses to load against another), the
# Triton kernels (rsinfer.kernels), the demo weights (rsinfer/weights). Install it with -c constraints.txt.
wheel: setup
	rm -f $(DIST)/rsinfer-*.whl
	$(BIN)/pip wheel -q --no-build-isolation --no-deps --wheel-dir $(DIST) .

S1 := $(DATA)/sen1floods11/Spain_7370579_S1Hand.tif
S2 := $(DATA)/sen1floods11/Spain_7370579_S2Hand.tif

# Static checks of the package, the tests, the benches and the tools.
lint: setup
	$(BIN)/ruff check --select E,F,W rsinfer tests bench tools

# The main job on bundled real data (../shared/data), outputs in $(OUT)/; about 2-3 minutes on a quiet 2-core machine
# (THREADS=1 sets torch's threads: faster on a machine that other jobs share). In order: the environment report; an
# NDWI COG of the Sen1Floods11 chip through the scene engine; cloud removal with the demo weights on the chip's
# held-out columns 384-511 under a fixed synthetic cloud field (the SAR model, the SAR-free one, and the mean and
# per-band std of 8 i2sb draws); pansharpening with the demo weights on a held-out Landsat 8 Wald pair; COP-GEN-Beta S1 -> S2 L2A translation of a 256 x 256 crop with seeded
# RANDOM weights (no official ones can be downloaded here). demo.heldout writes the held-out inputs, demo.report the
# quality tables (also $(OUT)/quality.md) and one side-by-side preview per model (before | after | reference).
# Every output is tagged with its weights (demo:<name> or random) and every preview carries their banner.
# The held-out strip is 128 pixels wide: 128-pixel tiles (overlap 32) compute 2.4x fewer pixels than padded 256s.
DECLOUD := $(BIN)/rsinfer decloud --s2 $(OUT)/decloud/s2_cloudy.tif --s1 $(OUT)/decloud/s1.tif --tile 128 --overlap 32 \
	--overwrite
THREADS ?= 1
run: export OMP_NUM_THREADS := $(THREADS)
run: setup
	mkdir -p $(OUT)
	$(BIN)/rsinfer env
	$(BIN)/rsinfer scene --product ndwi --input s2=$(S2) --out $(OUT)/ndwi.tif --cog --overwrite
	$(BIN)/python -m demo.heldout --data $(DATA) --out $(OUT)
	$(DECLOUD) --weights demo --out $(OUT)/decloud/dbcr-demo.tif
	$(DECLOUD) --weights demo:dbcr-demo-sar-free --out $(OUT)/decloud/dbcr-demo-sar-free.tif
	$(DECLOUD) --weights demo --sampler i2sb --steps 5 --samples 8 --out $(OUT)/decloud/dbcr-demo_i2sb_mean.tif \
		--uncertainty-out $(OUT)/decloud/dbcr-demo_i2sb_std.tif
	$(BIN)/rsinfer pansharpen --pan $(OUT)/pansharpen/pan_synthetic.tif --ms $(OUT)/pansharpen/ms.tif --weights demo \
		--out $(OUT)/pansharpen/crossdiff-demo.tif --overwrite
	$(BIN)/rsinfer translate --model copgen-beta --random-weights --input s1_rtc=$(OUT)/translate/s1.tif --target s2_l2a \
		--out $(OUT)/translate/s2_l2a.tif --preview $(OUT)/translate/s2_l2a.png --steps 4 --sampler unipc --seed 0 --overwrite
	$(BIN)/python -m demo.report --data $(DATA) --out $(OUT)

# The ops micro-benchmark (attention, modulate, add_layernorm, ... on every backend, against the GEMM rate measured in
# the same run): speed is not the main job's business. bench/RESULTS.md has the tables.
bench: setup
	$(BIN)/python bench/ops.py

# Regenerates every shipped weight file in weights/ (fixed seeds; the exact command and git commit go into each file's
# model card). Cloud removal about 30 + 18 minutes on a quiet 2-core machine (train/README.md), pansharpening about 7.
.PHONY: demo-weights
demo-weights: setup
	$(BIN)/python -m train.decloud --preset dbcr-demo --steps 6000 --threads 2 --compile --out weights/dbcr-demo.safetensors
	$(BIN)/python -m train.decloud --preset dbcr-demo-sar-free --steps 6000 --threads 2 \
		--out weights/dbcr-demo-sar-free.safetensors
	$(BIN)/python -m train.pansharpen --threads 2 --out weights/crossdiff-demo.safetensors

# Plants a fixed list of realistic bugs one at a time in a copy of the tree and checks a test catches each (TESTING.md).
mutate: setup
	nice -n 10 $(BIN)/python tools/mutate.py

clean:
	rm -rf build $(DIST) $(VENV) rsinfer/_C*.so *.egg-info
