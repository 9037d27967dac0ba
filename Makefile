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

# The main job on the bundled Sen1Floods11 chip (512 x 512, 10 m): environment report, a quick ops benchmark, an NDWI
# COG through the scene engine, DB-CR cloud removal (S1-fused, 3 bridge steps on ONNX Runtime) and COP-GEN-Beta
# S1 -> S2 L2A translation. No official weights can be downloaded here: both models run with seeded random weights,
# which is stamped into the outputs' metadata and previews.
run: setup
	mkdir -p $(OUT)
	$(BIN)/rsinfer env
	$(BIN)/python bench/ops.py --quick
	$(BIN)/rsinfer scene --product ndwi --input s2=$(S2) --out $(OUT)/ndwi.tif --cog --overwrite
	$(BIN)/rsinfer decloud --s2 $(S2) --s1 $(S1) --out $(OUT)/s2_clear.tif --random-weights --steps 3 \
		--engine onnxruntime --preview $(OUT)/s2_clear.png --overwrite
	$(BIN)/rsinfer translate --model copgen-beta --random-weights --input s1_rtc=$(S1) --target s2_l2a \
		--out $(OUT)/s2_l2a.tif --preview $(OUT)/s2_l2a.png --steps 4 --sampler unipc --seed 0 --overwrite

bench: setup
	$(BIN)/python bench/ops.py

# Plants a fixed list of realistic bugs one at a time in a copy of the tree and checks a test catches each (TESTING.md).
mutate: setup
	nice -n 10 $(BIN)/python tools/mutate.py

clean:
	rm -rf build $(DIST) $(VENV) rsinfer/_C*.so *.egg-info
