# Everybody Dance Now for Blender. `make demo` and `make test` bootstrap everything they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EDN := $(VENV)/bin/edn
STAMP := $(VENV)/.edn-setup-2
SHARED_MODELS ?= ../shared/models
# The oldest Blender the extension supports (4.2 LTS), as a Python module, for the add-on tests.
BPY42 := .venv-bpy42
BPY42_STAMP := $(BPY42)/.edn-setup-1

.PHONY: setup models samples demo test test-server test-addon lint bench extension clean

setup: $(STAMP) models

$(STAMP): server/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 mediapipe==1.2.3 'numpy<2' bpy==5.0.1 tqdm fastapi uvicorn pytest ruff matplotlib \
		schemathesis hypothesis pytest-timeout
	$(PY) -m pip install -q --no-deps -e server
	@touch $@

$(BPY42_STAMP):
	@test -x $(BPY42)/bin/python || $(PYTHON) -m venv $(BPY42)
	$(BPY42)/bin/python -m pip install -q 'bpy==4.2.*' pytest
	@touch $@

# A PoseLandmarker bundle in the user cache; copied from ../shared/models when it exists (saves a build).
models: $(STAMP)
	$(EDN) pose model --variant full $(if $(wildcard $(SHARED_MODELS)/*.task),--from-dir $(SHARED_MODELS),)
	$(PY) -c "from edn_server.config import record_python; record_python()"  # the extension starts the server with it

samples: setup
	$(EDN) samples

demo: setup
	$(PY) -m edn_server.demo.walkthrough --out out $(if $(SOURCE),--source $(SOURCE)) $(if $(TARGET),--target $(TARGET)) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(RETRAIN),--retrain)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: setup lint $(BPY42_STAMP)
	$(MAKE) --no-print-directory test-server test-addon

test-server: setup
	$(VENV)/bin/pytest -q tests --ignore=tests/addon

# The add-on under both Blender versions; each run starts its own server from $(VENV).
test-addon: setup $(BPY42_STAMP)
	$(VENV)/bin/pytest -q tests/addon
	$(BPY42)/bin/pytest -q tests/addon

bench: setup
	$(PY) bench/pose.py
	$(PY) bench/server.py
	$(PY) bench/gan.py

# blender_manifest.toml (top level) is the source of truth; Blender's tool wants it beside
# __init__.py, so the package is staged with it in build/extension/ and built from there.
EXT_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' blender_manifest.toml)
EXT_ZIP = dist/edn_motion_transfer-$(EXT_VERSION).zip
# Built with the tool of the oldest supported Blender (the bpy 4.2 venv): no torch, no mediapipe, and
# the project's own .venv (and its editable install) is left alone. Evaluated when the recipe runs.
BLENDER_EXT = $(firstword $(wildcard $(BPY42)/lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py))

extension: $(BPY42_STAMP)
	rm -rf build/extension && mkdir -p build/extension dist
	cp blender_manifest.toml build/extension/
	cp edn_blender_addon/*.py build/extension/
	$(BPY42)/bin/python $(BLENDER_EXT) build --source-dir build/extension --output-filepath $(EXT_ZIP)
	$(BPY42)/bin/python $(BLENDER_EXT) validate $(EXT_ZIP)

clean:
	rm -rf out build dist .pytest_cache
