# The two README commands: `make run` (the main job on bundled real data) and `make test`.
# Both create .venv, install pinned dependencies, build the extension, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsinfer-installed
DATA := ../shared/data
OUT ?= out

.PHONY: setup build run test lint bench mutate gdal clean

setup: $(STAMP) gdal

# torch is installed first and pinned: the extension builds against it without build isolation.
$(STAMP): pyproject.toml setup.py CMakeLists.txt $(wildcard csrc/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q setuptools==84.2.1 wheel==0.48.0
	$(BIN)/pip install -q torch==2.13.0 pybind11==3.1.0
	$(BIN)/pip install -q --no-build-isolation -e '.[all]'
	touch $@

# gdalinfo (Debian's gdal-bin) is the independent reader the tests check our GeoTIFFs with.
gdal:
	@command -v gdalinfo >/dev/null || { apt-get update -q && apt-get install -y -q gdal-bin; }

build: setup
	$(BIN)/python setup.py build_ext --inplace

test: setup
	$(BIN)/python -m pytest -n 2 -q

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
	rm -rf build $(VENV) rsinfer/_C*.so *.egg-info
