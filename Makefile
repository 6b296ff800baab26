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

.PHONY: playground test lint bench venv sample datasets clean-data

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

playground: datasets
	@echo "Sample set in datasets/fma, processed datasets in datasets/processed/sample."
	@echo "(Model training and the web playground arrive with the next issues.)"

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile tests

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/preprocess.py
