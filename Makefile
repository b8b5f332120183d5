# Two entry points, both safe on a fresh machine:
#   make demo   create the virtual environment, install, run one poll over the shipped mail
#   make test   also install the Debian packages the tests need, then run the whole suite
#               twice: with SQLite stores, then with PostgreSQL ones

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ccas-bot needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

# GOV.UK Frontend for the web app, from the npm registry at the version in package-lock.json.
WEB_ASSETS := bot/web/node_modules/govuk-frontend/package.json

$(WEB_ASSETS): bot/web/package.json bot/web/package-lock.json
	@command -v npm >/dev/null || { echo "the web app needs npm (Node.js) to install GOV.UK Frontend"; exit 1; }
	npm ci --prefix bot/web --no-audit --no-fund
	touch $@

install: $(BIN)/.installed $(WEB_ASSETS)

demo: $(BIN)/.installed $(WEB_ASSETS)
	$(BIN)/ccas-bot demo --folder var/demo

test: $(BIN)/.installed $(WEB_ASSETS)
	bash scripts/install-test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
# The same suite again with every store on a throw-away PostgreSQL server (tests/conftest.py).
	CCAS_TEST_DATABASE=postgresql $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache
