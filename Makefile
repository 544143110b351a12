# The two commands of the README: `make run` executes every notebook headlessly,
# `make test` runs the test suite. Both create .venv and install the project when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= auto

.PHONY: run test lab student bench estimate gpu-check clean-runs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,search]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m tutorlib.runner --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m pytest tests -m "not teaching_contract" --durations=20
	TUTORLIB_PROFILE=smoke TUTORLIB_PROGRESS=0 TUTORLIB_RUNS=$(CURDIR)/runs/nbval \
		$(PY) -m pytest --nbval-lax --nbval-cell-timeout=1800 notebooks

lab: $(STAMP)
	$(PY) -m tutorlib.lab

# How close each training stage comes to the CPU's matrix-product peak, with 1 and 2 threads.
bench: $(STAMP)
	$(PY) -m tutorlib.bench --threads 1 2

# The cost of the full profile on one H100-class GPU, from a dry run of every notebook (runs/estimate.md).
estimate: $(STAMP)
	$(PY) -m tutorlib.runner --estimate

# On a machine with a GPU: every notebook under full, each time-limited, beside runs/estimate.json if present.
gpu-check: $(STAMP)
	$(PY) -m tutorlib.runner --gpu-check

clean-runs:
	rm -rf runs

# Student copies of the notebooks in student/notebooks/: solutions and core bodies replaced by stubs
# (conventions in tutorlib/exercises.py).
student: $(STAMP)
	$(PY) -m tutorlib.student --out student/notebooks
