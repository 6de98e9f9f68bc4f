# The README's commands. `make demo` and `make test` set everything up first on a fresh
# machine (a .venv with the package, and the Fashion-MNIST data).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup data browser test test-all demo bench-peers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(MAKE) --no-print-directory data browser
	touch $(STAMP)

setup: $(STAMP)

# Debian's package where apt and root are available, otherwise our own verified download.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
	  echo "fashion-mnist: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq dataset-fashion-mnist || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	else \
	  $(BIN)/ganvae datasets download fashion-mnist; \
	fi

# Debian's Chromium, which the report's browser test drives through Playwright.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)); \
	else \
	  echo "chromium not found and apt-get unavailable: the browser test will fail" >&2; \
	fi

# One pytest worker per core (pytest-xdist; tests/conftest.py gives each its share of threads):
# most tests are small single-threaded nets, so 2 workers on 2 cores take ~6 minutes, not ~8.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m ''

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 45s --precision auto \
	  --set width=32 --eval-n 5000 --curve-points 4 --out runs/demo

# ganvae's VAE against pythae's on the same nets and wall-clock budget (benchmarks/pythae_peer.py).
bench-peers: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/pythae_peer.py

clean:
	rm -rf $(VENV) runs .pytest_cache
