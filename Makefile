# The two commands of the README: `make run` executes every notebook headlessly,
# `make test` runs the test suite. Both create .venv and install the project when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= auto

.PHONY: run test lab bench clean-runs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m tutorlib.runner --profile $(PROFILE)

test: $(STAMP)
	$(PY) -m pytest tests
	TUTORLIB_PROFILE=smoke TUTORLIB_PROGRESS=0 TUTORLIB_RUNS=$(CURDIR)/runs/nbval \
		$(PY) -m pytest --nbval-lax --nbval-cell-timeout=1800 notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m tutorlib.world.bench

clean-runs:
	rm -rf runs

# Student copies of the notebooks in student/notebooks/: solutions and core bodies replaced by stubs
# (conventions in tutorlib/exercises.py).
.PHONY: student
student: $(STAMP)
	$(PY) -m tutorlib.student --out student/notebooks
