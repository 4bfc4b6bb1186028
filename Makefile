# Quick start:  make demo   (set-up + a DCGAN demo on the embedded digits)
#               make test   (set-up + the whole test suite)
# Set-up makes .venv from requirements.txt once, with the exact versions of constraints.txt;
# it reinstalls only when one of the two changes.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

# The demo: DCGAN on scikit-learn's digits, sized to show digits within ~5 CPU minutes.
# Differs from the paper (64x64, ngf=ndf=128, 25 epochs) in image size, widths and length.
DEMO_ARGS ?= --data digits --image-size 32 --ngf 32 --ndf 32 --epochs 108 --max-steps 1500 \
             --sample-every 500 --save-every 500 --out runs/demo

.PHONY: setup demo test clean gpu-wheels

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

demo: setup
	$(PY) -m dcgan.train $(DEMO_ARGS)
	@echo "sample grid:  runs/demo/samples/ (the last one is the final grid)"
	@echo "TensorBoard:  $(VENV)/bin/tensorboard --logdir runs/demo"

test: setup
	$(PY) -m pytest

clean:
	rm -rf runs .pytest_cache

# pytest as wheels for benchmarks/gpu_check.sh, in case the GPU machine's python lacks it (the
# image seen in 2026-11 holds it; the script installs these only when it does not): make
# gpu-wheels, then carry .gpu_wheels with the working tree. All pure-Python wheels (Python 3.11+).
gpu-wheels: setup
	$(PY) -m pip download --quiet --no-deps -d .gpu_wheels -c constraints.txt pytest pluggy iniconfig packaging pygments
