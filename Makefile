# GenAI Roadmap Lab: `make lab` to learn, `make test` to check everything. Both install first (fast when
# nothing changed). CPU PyTorch goes in first, on its own: a bare `torch` would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION := 2.13.0
STAMP  := $(VENV)/.installed-$(TORCH_VERSION)
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
PHASES := phase1_foundations phase2_tooling phase3_architecture phase4_production phase5_frontier
PYTEST_ARGS ?=

.PHONY: install lab test lint models student site colab-canary benchmark freeze clean-cache help

help:
	@echo "make lab        install (once) and start JupyterLab on the course"
	@echo "make test       install (once), build the course models (cached), run every test and notebook"
	@echo "make student PHASE=phase1_foundations OUT=~/handout [KEY=~/key]   a student pack (and nbgrader answer key)"
	@echo "make site       build the course website from the executed notebooks into _site/ (open _site/index.html)"
	@echo "make colab-canary  run the tests and notebooks under Google Colab's library versions (~30 min)"
	@echo "make benchmark  time every notebook in a fresh kernel (writes benchmarks/notebooks.csv)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

install: $(STAMP)

lab: install
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --notebook-dir=.

models: install
	$(OFFLINE) $(BIN)/python -m genai_roadmap.models build

lint: install
	$(BIN)/ruff check genai_roadmap tests $(PHASES)

# Two pytest workers on two cores: one thread each (two threads each would oversubscribe the cores, and
# small-op loops such as word2vec's then run 10x slower). `make benchmark` runs alone with all threads.
test: install lint models
	$(OFFLINE) OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env \
		-p no:cacheprovider tests $(PHASES) $(PYTEST_ARGS)

student: install
	@test -n "$(PHASE)" || (echo "usage: make student PHASE=phase1_foundations [OUT=../student] [KEY=../answer-key]"; exit 2)
	$(BIN)/python -m genai_roadmap.pack $(PHASE) --out $(or $(OUT),../student) $(if $(KEY),--answer-key $(KEY))

site: install
	$(OFFLINE) $(BIN)/python -m genai_roadmap.site --out $(or $(OUT),_site)

# Colab-version canary: tests and notebooks under Colab's library versions (constraints-colab.txt) in .venv-colab
colab-canary:
	.ci/colab_canary $(PYTEST_ARGS)

benchmark: install models
	$(OFFLINE) $(BIN)/python -m genai_roadmap.benchmark

freeze: install
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable \
		| grep -viE '^(torch==|genai-roadmap|-e )'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean-cache:
	$(BIN)/python -c "import shutil, genai_roadmap as g; p = g.cache_dir(); shutil.rmtree(p); print('removed', p)"
