# mixedbayes: `make demo` runs the main job, `make test` the test suite.
# Both create .venv with Python >= 3.12 (found on PATH or in pyenv) and install the pinned stack.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JAX_STAMP := $(VENV)/.jax-stamp
EXTRAS ?= dev
# Compile caches inside the project (PyTensor keeps its numba cache under base_compiledir).
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.cache/pytensor
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
# Compiled sampler programs (jax.export) and XLA executables (JAX's persistent cache).
export MIXEDBAYES_CACHE_DIR ?= $(CURDIR)/.cache/mixedbayes

.PHONY: demo test test-fast lint typecheck venv clean lock bench bench-quick bench-policy bench-joint bench-compositional bench-mi fit-dietswap validate validate-joint validate-compositional validate-compositional-horseshoe validate-missing validate-ar1

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/find-python.sh
	@set -e; \
	if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  echo "Removing $(VENV): it was made with a Python older than 3.12"; rm -rf $(VENV); fi; \
	if [ ! -x $(PY) ]; then \
	  PYTHON=$${PYTHON:-$$(scripts/find-python.sh)}; \
	  echo "Creating $(VENV) with $$PYTHON"; \
	  $$PYTHON -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mixedbayes demo --out out/demo
	@echo "open it in a browser: file://$(CURDIR)/out/demo/report.html"

lint: $(STAMP)
	$(VENV)/bin/ruff check mixedbayes tests benchmarks
	$(VENV)/bin/ruff format --check mixedbayes tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Test modules are spread over one worker per core (at most 4; TEST_WORKERS=0 runs them in
# this process): each module stays on one worker, so its fixtures' fits are made once, and the
# workers share the compile caches above (a structure compiled by one is loaded by the other).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST_PAR := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: lint typecheck
	@bash scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15 $(PYTEST_PAR)

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow" $(PYTEST_PAR)

# The benchmarks also run the JAX sampler (numpyro): the optional `jax` extra, pinned too.
$(JAX_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS),jax]"
	@touch $(JAX_STAMP)

# Benchmarks against bambi (and lme4/brms when R has them); not part of the test suite.
# Writes benchmarks/results/<case>.md and summary.md; every run is capped at 20 min.
bench: $(JAX_STAMP)
	$(PY) benchmarks/run.py

bench-quick: $(JAX_STAMP)
	$(PY) benchmarks/run.py --quick

# The measurement behind sampler="auto": each backend cold and warm (benchmarks/results/policy.md).
bench-policy: $(STAMP)
	$(PY) benchmarks/policy.py

# The joint model at pbc2 size against rstanarm's stan_jm (recorded as not run without R).
bench-joint: $(STAMP)
	$(PY) benchmarks/joint.py

# The compositional model at dietswap size against per-taxon statsmodels MixedLM (fido and
# MaAsLin2 recorded as not run without R); mixedbayes fits capped at 25 min in all.
bench-compositional: $(STAMP)
	$(PY) benchmarks/compositional.py

# Multiple imputation: M = 20 LMM fits through the Dask batch (LocalCluster, 2 workers) vs
# serially; brms brm_multiple recorded as skipped without R (benchmarks/results/multiple_imputation.md).
bench-mi: $(STAMP)
	$(PY) benchmarks/multiple_imputation.py

# dietswap end to end (read from ../shared/refdata): fit, taxa_effects.csv, report.html in out/dietswap.
fit-dietswap: $(STAMP)
	$(PY) benchmarks/dietswap.py --out out/dietswap

lock: $(JAX_STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^mixedbayes' \
	  | sed '1i # Pinned stack: what CI tested (Python 3.12). Regenerate with `make lock`.' > constraints.txt

clean:
	rm -rf $(VENV) .cache out .pytest_cache .ruff_cache .mypy_cache

# Simulation-based calibration (200 replicates each: LMM, Poisson GLMM, one-compartment PK) on
# a Dask LocalCluster; writes benchmarks/results/sbc.md. Interrupted runs resume (out/sbc/).
validate: $(STAMP)
	$(PY) benchmarks/validate.py

# SBC of a Weibull joint model (200 replicates): benchmarks/results/sbc_joint.md.
validate-joint: $(STAMP)
	$(PY) benchmarks/validate.py --cases joint --out benchmarks/results/sbc_joint.md

# SBC of a compositional model (100 replicates): benchmarks/results/sbc_compositional.md.
validate-compositional: $(STAMP)
	$(PY) benchmarks/validate.py --cases compositional --n 100 --out benchmarks/results/sbc_compositional.md

# SBC of the default horseshoe pooling and of group_sd: taxon (100 replicates each):
# benchmarks/results/sbc_compositional_horseshoe.md and sbc_compositional_group_sd.md.
validate-compositional-horseshoe: $(STAMP)
	$(PY) benchmarks/validate.py --cases compositional_horseshoe --n 100 --out benchmarks/results/sbc_compositional_horseshoe.md
	$(PY) benchmarks/validate.py --cases compositional_group_sd --n 100 --out benchmarks/results/sbc_compositional_group_sd.md

# Missing covariates by simulation (issue 19): complete cases vs imputation by sampling vs
# multiple imputation (200 replicates), calibration of summed-out binary classes;
# writes benchmarks/results/missing_data.md. Interrupted runs resume (out/validate_missing/).
validate-missing: $(STAMP)
	$(PY) benchmarks/validate_missing.py --reps 200 --disc-reps 150 --draws 300 --tune 300

# AR(1) residuals by simulation (issue 20): 200 replicates of 40 subjects x 8 visits, phi = 0.6;
# coverage of the fixed slopes with residuals: ar1 vs ignoring the correlation, phi recovery;
# writes benchmarks/results/ar1_calibration.md. Interrupted runs resume (out/validate_ar1/).
validate-ar1: $(STAMP)
	$(PY) benchmarks/validate_ar1.py --reps 200 --draws 500 --tune 500
