# Two commands do all the set-up on a fresh machine:
#   make playground   sample data, processed datasets (then models and the server, as they land)
#   make test         the whole test suite
# Both are idempotent: a second run reuses the venv, the data and the datasets.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE_TRACKS_PER_GENRE ?= 10
DATASET_CONFIGS := $(wildcard datasets/processed/samples/*.json)
PLAYGROUND_MODELS := models/playground/conv_ae.json models/playground/classifier.json

.PHONY: playground test lint bench venv sample datasets models

venv: $(STAMP)

# Reinstall only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

datasets/fma/fma_metadata/tracks.csv: | $(STAMP)
	$(PY) data_processor.py sample --out datasets/fma --tracks-per-genre $(SAMPLE_TRACKS_PER_GENRE) --seed 0

sample: datasets/fma/fma_metadata/tracks.csv

datasets: sample
	@for c in $(DATASET_CONFIGS); do $(PY) data_processor.py process -c $$c || exit $$?; done

# --resume makes this idempotent: trains on the first run, continues a killed run, and is a
# no-op once a run has all its epochs.
models: datasets
	@for c in $(PLAYGROUND_MODELS); do \
	  $(PY) train.py -c $$c --resume && $(PY) train.py test -c $$c || exit $$?; done

playground: models
	@echo "Sample set in datasets/fma, datasets in datasets/processed/sample,"
	@echo "trained models in models/runs/playground (test metrics in each run's test_metrics.json)."
	@echo "(The web playground arrives with the next issue.)"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile tests

lint: $(STAMP)
	$(PY) -m ruff check .

bench: models
	$(PY) bench/preprocess.py
	$(PY) bench/train_throughput.py
	$(PY) bench/encode.py
