# make run   : set up, then the desk app with the insurer simulator and a virtual card reader
#              (headless machine: the same counter flow as `clinic demo`, printing the receipt path)
# make test  : set up, then the whole test suite
# make bench : set up, then the benchmarks
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
export CLINIC_HOME ?= $(CURDIR)/var/clinic
export CLINIC_TRAINING_HOME ?= $(CURDIR)/var/clinic-training

.PHONY: run test bench setup system-deps demo clean

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		$(VENV)/bin/clinic desk; \
	else \
		echo "没有图形显示，改为无界面演示 (no display: running the headless counter flow)"; \
		$(VENV)/bin/clinic demo; \
	fi

test: setup
	CLINIC_TEST_PG_URL="$$(bash scripts/test-postgres.sh || true)" \
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
