# The two README commands: `make run` (the main job on bundled real data) and `make test`.
# Both create .venv, install pinned dependencies, build the extension, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsinfer-installed
DATA := ../shared/data
OUT ?= out

.PHONY: setup build run test bench gdal clean

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

run: setup
	mkdir -p $(OUT)
	$(BIN)/rsinfer env
	$(BIN)/python bench/ops.py --quick

bench: setup
	$(BIN)/python bench/ops.py

clean:
	rm -rf build $(VENV) rsinfer/_C*.so *.egg-info
