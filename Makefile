# segkit: every set-up step lives here, so a fresh machine needs only `make demo` / `make test`.
#
# libtorch: tch 0.26 needs PyTorch 2.13.0 exactly. Unless you set LIBTORCH to your own
# libtorch 2.13.0, we provision a venv at $(SEGKIT_TORCH_VENV) (outside the repo, cached
# across clones) and build with LIBTORCH_USE_PYTORCH=1 and that venv's python first on PATH.
# The same venv carries Pillow 13.0.0 + numpy for the labelme oracle used by the tests.

SHELL := /bin/bash
SEGKIT_TORCH_VENV ?= $(HOME)/.cache/segkit/torch-2.13.0
TORCH_VERSION := 2.13.0
PILLOW_VERSION := 13.0.0
VENV_PY := $(SEGKIT_TORCH_VENV)/bin/python
STAMP := $(SEGKIT_TORCH_VENV)/.segkit-provisioned-$(TORCH_VERSION)-pillow$(PILLOW_VERSION)

export SEGKIT_PYTHON := $(VENV_PY)
ifeq ($(strip $(LIBTORCH)),)
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(SEGKIT_TORCH_VENV)/bin:$(PATH)
export PYTHON_SYS_EXECUTABLE := $(VENV_PY)
endif

CARGO ?= cargo
DEMO_DIR ?= demo-out

.PHONY: all provision build release test demo bench lint fmt clean-demo install

all: build

# Creates the venv and installs pinned torch/Pillow when the stamp is missing or the venv
# holds another torch; idempotent and quick when already there.
provision: $(STAMP)
$(STAMP):
	@set -e; \
	if [ ! -x "$(VENV_PY)" ]; then \
	  echo "provision: creating $(SEGKIT_TORCH_VENV)"; \
	  mkdir -p "$(dir $(SEGKIT_TORCH_VENV))"; \
	  python3 -m venv "$(SEGKIT_TORCH_VENV)"; \
	fi; \
	if ! "$(VENV_PY)" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$(TORCH_VERSION)' else 1)" 2>/dev/null; then \
	  echo "provision: installing torch==$(TORCH_VERSION) (about 5 GB the first time)"; \
	  "$(VENV_PY)" -m pip install --quiet --progress-bar off "torch==$(TORCH_VERSION)"; \
	fi; \
	"$(VENV_PY)" -m pip install --quiet --progress-bar off "pillow==$(PILLOW_VERSION)" numpy; \
	"$(VENV_PY)" -c "import torch, PIL, numpy; assert torch.__version__.split('+')[0] == '$(TORCH_VERSION)'; assert PIL.__version__ == '$(PILLOW_VERSION)'"; \
	touch "$@"

build: provision
	$(CARGO) build --release

test: provision
	$(CARGO) build --release
	$(CARGO) build --release --no-default-features --bin segkit --target-dir target/notrain
	$(CARGO) test --release --workspace

lint: provision
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: provision
	$(CARGO) build --release
	bash bench/run.sh

# The binary and its trainer plugin (opened only by train/eval/predict/lr-find/sweep/
# import-weights), in the layout the binary looks in: PREFIX/bin and PREFIX/lib/segkit.
PREFIX ?= $(HOME)/.local
install: build
	install -Dm755 target/release/segkit "$(PREFIX)/bin/segkit"
	install -Dm755 target/release/deps/libsegkit_trainer_plugin.so "$(PREFIX)/lib/segkit/libsegkit_trainer_plugin.so"
	@echo "installed $(PREFIX)/bin/segkit and $(PREFIX)/lib/segkit/libsegkit_trainer_plugin.so"

# The demo: synthetic labelme data → every pipeline stage that exists → prints what it made.
demo: build
	bash scripts/demo.sh target/release/segkit $(DEMO_DIR)

clean-demo:
	rm -rf $(DEMO_DIR)
