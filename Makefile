# The front door: make train LANG=zh-en, make test, make lint.
#
# LANG names the language pair here. It is also the locale variable, so recipes never hand it
# to child processes: they run under a UTF-8 locale of their own (see $(RUN)).

PAIR := $(if $(wildcard data/$(LANG).yaml),$(LANG),zh-en)
ARGS ?=
SIDE ?= en
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN := env -u LANGUAGE LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONUTF8=1 TF_CPP_MIN_LOG_LEVEL=2 $(PY)

.PHONY: help install train translate evaluate export lm demo bench grid notebook test lint format clean

help:
	@echo "make train LANG=zh-en [ARGS='--set train.epochs=2']  prepare, train, evaluate (runs/<pair>)"
	@echo "make translate LANG=zh-en < input.txt               translate stdin with runs/<pair>"
	@echo "make evaluate LANG=zh-en                            score runs/<pair> on its test sets"
	@echo "make export LANG=zh-en                              SavedModel in exports/<pair>/<version>"
	@echo "make lm LANG=zh-en SIDE=en                          language model of one side -> runs/lm-<side>"
	@echo "make demo LANG=zh-en [ARGS='--port 8000']            translation page on http://127.0.0.1:8000/"
	@echo "make bench LANG=zh-en                               speed figures -> bench/results.json"
	@echo "make grid LANG=zh-en                                cells x attention, 5 min each -> runs/grid/<pair>"
	@echo "make notebook [LANG=zh-en]                          Jupyter on notebooks/, run runs/<pair>"
	@echo "make test | make lint | make format | make install"

# s2s installed editable (pyproject.toml) with its extras: the `s2s` command and `import s2s`.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

train: install
	$(RUN) -m s2s train --lang $(PAIR) --run runs/$(PAIR) $(ARGS)

translate: install
	@$(RUN) -m s2s translate --run runs/$(PAIR) $(ARGS)

evaluate: install
	$(RUN) -m s2s evaluate --run runs/$(PAIR) --split all $(ARGS)

export: install
	$(RUN) -m s2s export --run runs/$(PAIR) --out exports/$(PAIR) $(ARGS)

lm: install
	$(RUN) -m s2s lm train --lang $(PAIR) --side $(SIDE) --run runs/lm-$(SIDE) $(ARGS)

demo: install
	$(RUN) -m s2s demo --run runs/$(PAIR) $(ARGS)

bench: install
	$(RUN) -m s2s bench --lang $(PAIR) $(ARGS)

grid: install
	$(RUN) -m s2s grid --lang $(PAIR) --out runs/grid/$(PAIR) $(ARGS)

notebook: install
	env -u LANGUAGE LANG=C.UTF-8 LC_ALL=C.UTF-8 S2S_RUN=$(CURDIR)/runs/$(PAIR) \
		$(VENV)/bin/jupyter lab --notebook-dir=notebooks

test: install
	$(RUN) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf runs exports build dist *.egg-info .pytest_cache .ruff_cache
