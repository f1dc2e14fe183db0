# Everybody Dance Now for Blender. `make demo` and `make test` bootstrap everything they use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EDN := $(VENV)/bin/edn
STAMP := $(VENV)/.edn-setup-1
SHARED_MODELS ?= ../shared/models

.PHONY: setup models samples demo test lint bench clean

setup: $(STAMP) models

$(STAMP): server/pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 mediapipe==1.2.3 'numpy<2' bpy==5.0.1 tqdm pytest ruff matplotlib fastapi uvicorn
	$(PY) -m pip install -q --no-deps -e server
	@touch $@

# A PoseLandmarker bundle in the user cache; copied from ../shared/models when it exists (saves a build).
models: $(STAMP)
	$(EDN) pose model --variant full $(if $(wildcard $(SHARED_MODELS)/*.task),--from-dir $(SHARED_MODELS),)

samples: setup
	$(EDN) samples

demo: setup
	$(PY) -m edn_server.demo --out out $(if $(SOURCE),--source $(SOURCE)) $(if $(TARGET),--target $(TARGET))

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	$(VENV)/bin/pytest -q tests

bench: setup
	$(PY) bench/pose.py

clean:
	rm -rf out build dist .pytest_cache
