# Entry points of twolayer. Every target creates .venv on first use.
#   make book                  execute the notebooks (default profile) and build the HTML book
#   make book-student          the same book without the exercises' solutions
#   make test                  ruff, unit tests and notebook tests
#   make browser-deps          Debian's Chromium, for the test that opens the book in a browser
#   make run NB=<notebook> [PROFILE=smoke|default|paper] [P="-p NAME VALUE ..."]
#   make sweep NB=<notebook> [SEEDS=20] [PROFILE=...] [P=...] [SCHEDULER=tcp://host:8786] [PUBLISH=1]
#   make lab | bench | timings | timings-exercises | refresh-refs | lock | clean | distclean

PYTHON ?= python3
PROFILE ?= default
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# A local mirror of MNIST and CIFAR-10 next to the repository, when there is one.
ifneq ($(wildcard ../shared/data),)
export TWOLAYER_DATA ?= $(abspath ../shared/data)
endif

.PHONY: book book-student run sweep require-nb test browser-deps refresh-refs bench timings timings-exercises lab lock clean distclean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $@

book: $(STAMP)
	$(BIN)/python -m twolayer.companion.run --all --reuse --profile $(PROFILE)
	$(BIN)/python -m twolayer.companion.book --profile $(PROFILE)

# The same notebooks and pages with every exercise's solution left out, for handing out.
book-student: $(STAMP)
	$(BIN)/python -m twolayer.companion.run --all --reuse --profile $(PROFILE)
	$(BIN)/python -m twolayer.companion.book --profile $(PROFILE) --student

require-nb:
	@test -n "$(NB)" || { echo 'error: name a notebook: make run NB=du2019-figure1 [PROFILE=smoke] [P="-p seed 3"]' >&2; exit 2; }

run: require-nb $(STAMP)
	$(BIN)/python -m twolayer.companion.run $(NB) --profile $(PROFILE) $(P)

# The notebook over SEEDS fresh seeds, one Dask task per run: on a local cluster of this
# machine's cores, or on the Dask scheduler at SCHEDULER. Writes, per claim, the seeds it held
# for to results/<profile>/<notebook>/sweep.json; PUBLISH=1 also records them in book/sweeps.json.
SEEDS ?= 20
sweep: require-nb $(STAMP)
	$(BIN)/python -m twolayer.companion.sweep $(NB) --seeds $(SEEDS) --profile $(PROFILE) $(P) \
	  $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(PUBLISH),--publish)

# The tests run on TEST_WORKERS processes (pytest-xdist; auto: one per core), each with one
# thread per kernel and per process, so that the workers share the cores out.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/ruff check src tests
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/pytest tests --nbval-lax --nbval-current-env \
	  -n $(TEST_WORKERS) --dist loadscope

# tests/test_browser.py opens the built book in Debian's Chromium, driven by Playwright
# (a test dependency) with that executable: Playwright downloads no browser of its own.
SUDO := $(if $(filter 0,$(shell id -u 2>/dev/null)),,sudo)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation; }
	@chromium --version 2>/dev/null

# NB="name ..." refreshes only those references.
refresh-refs: $(STAMP)
	$(BIN)/python -m twolayer.companion.references $(NB)

# BENCH="--parts kernels --device cuda" passes options (python benchmarks/bench.py --help).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)

# NB="name ..." measures only those and keeps the other entries.
timings: $(STAMP)
	$(BIN)/python -m twolayer.companion.timings $(NB)

# The runs the exercises ask for (NB="name ..." for only those), for the teaching page.
timings-exercises: $(STAMP)
	$(BIN)/python -m twolayer.companion.timings --exercises $(NB)

$(VENV)/.lab-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test,lab]"
	touch $@

# Extra JupyterLab options, e.g. LAB_ARGS="--no-browser --port 8890". JupyterLab refuses to
# start as root (containers) unless told to, so root gets --allow-root.
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
lab: $(VENV)/.lab-installed
	cd notebooks && ../$(BIN)/jupyter lab $(LAB_ROOT) $(LAB_ARGS)

# Re-resolve the whole dependency tree in a throwaway environment and pin it.
lock:
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	_build/lock-venv/bin/python -m pip install --quiet -e ".[book,test,lab]"
	{ head -n 2 constraints.txt; \
	  _build/lock-venv/bin/python -m pip freeze --exclude-editable | sed -e 's/+cpu$$//'; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf _build/lock-venv

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) results
