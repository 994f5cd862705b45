PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers (pytest-xdist; their effect on the suite's time: docs/install-and-test.md). make test TEST_JOBS=1: one
TEST_JOBS ?= 2

.PHONY: test test-all parity demo bench install lock clean device-check

$(STAMP): requirements.txt requirements-test.txt requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-test.txt -c requirements.lock
	touch $(STAMP)

# requirements.lock anew from the newest versions the index has (then run make test and re-measure)
lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/python -m pip freeze | sed 's/^torch==\([0-9.]*\)+cpu/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

install: $(STAMP)

# make test: everything but the long checks (the marker "long", tests/conftest.py's LONG_TESTS), which make test-all
# runs; the two together run every test once (.ci/run runs both)
test: $(STAMP)
	$(BIN)/python -m pytest -q -rs --durations=10 -n $(TEST_JOBS) -m "not long" tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -rs --durations=10 -n $(TEST_JOBS) -m long tests

# the parity cases on whole sets (make test uses three images of Set68 and of McMaster, and checks the shipped
# weights on three of Set68; here also their Set12 and Set68 rows)
parity: $(STAMP)
	PARITY=full $(BIN)/python -m pytest -q -rs tests/test_parity.py tests/test_colour.py tests/test_shipped_weights.py -k "parity or psnr or figures"

demo: $(STAMP)
	$(BIN)/python demo.py --out demo_output

bench: $(STAMP)
	$(BIN)/python bench.py

# the first day on a CUDA GPU or an Ascend NPU: one table of checks (test/device_check.py); without a device one
# line and exit 0; DRY_RUN=1 prints the commands. No venv needed there: PYTHON, else .venv/bin/python, else python3.
device-check:
	bash test/device_check.sh

clean:
	rm -rf demo_output test/output .pytest_cache
