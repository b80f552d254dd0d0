# Entry points of twolayer. Every target creates .venv on first use.
#   make book                  execute the notebooks (default profile) and build the HTML book
#   make test                  ruff, unit tests and notebook tests
#   make run NB=<notebook> [PROFILE=smoke|default|paper] [P="-p NAME VALUE ..."]
#   make lab | bench | timings | refresh-refs | lock | clean | distclean

PYTHON ?= python3
PROFILE ?= default
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# A local mirror of MNIST and CIFAR-10 next to the repository, when there is one.
ifneq ($(wildcard ../shared/data),)
export TWOLAYER_DATA ?= $(abspath ../shared/data)
endif

.PHONY: book run require-nb test refresh-refs bench timings lab lock clean distclean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test]"
	touch $@

book: $(STAMP)
	$(BIN)/python -m twolayer.companion.run --all --reuse --profile $(PROFILE)
	$(BIN)/python -m twolayer.companion.book --profile $(PROFILE)

require-nb:
	@test -n "$(NB)" || { echo 'error: name a notebook: make run NB=du2019-figure1 [PROFILE=smoke] [P="-p seed 3"]' >&2; exit 2; }

run: require-nb $(STAMP)
	$(BIN)/python -m twolayer.companion.run $(NB) --profile $(PROFILE) $(P)

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/pytest tests --nbval-lax --nbval-current-env

# NB="name ..." refreshes only those references.
refresh-refs: $(STAMP)
	$(BIN)/python -m twolayer.companion.references $(NB)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_gd.py

# NB="name ..." measures only those and keeps the other entries.
timings: $(STAMP)
	$(BIN)/python -m twolayer.companion.timings $(NB)

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
