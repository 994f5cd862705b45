PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench install clean

$(STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs --durations=10 tests

demo: $(STAMP)
	$(BIN)/python demo.py --out demo_output

bench: $(STAMP)
	$(BIN)/python bench.py

clean:
	rm -rf demo_output test/output .pytest_cache
