# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The browser tests use the system Chromium (never a downloaded build) and npm (for axe-core).
CHROMIUM := /usr/bin/chromium
IN_CI := $(filter 1 true TRUE yes,$(CI))

# pytest-xdist workers for `make test`. Since the tests share Chromium and servers, the suite keeps
# both cores busy with two workers: a third only adds contention (2026-12-08: 298 s at 2, 303-321 s
# at 3, 342 s at 4; docs/benchmarks.md, "Test suite"). Override: make test TEST_WORKERS=3
TEST_WORKERS ?= 2

.PHONY: run test lint install messages browser-deps nginx-deps voice-deps

run: $(STAMP)
	$(BIN)/portico db upgrade
	$(BIN)/portico demo
	$(BIN)/portico serve

# Lint first, so a type error or an unformatted file fails `make test` (and CI) as a failing test does.
# Bytecode is written even where the environment says not to: without it every pytest worker
# rewrites the asserts of ~270 plugin modules again and every `portico serve` the tests start
# compiles Portico anew (docs/benchmarks.md, "Test suite"). worksteal: a worker left idle at the
# end takes tests queued for another, so the long tests do not finish the run alone.
test: lint browser-deps nginx-deps voice-deps
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# All three run even when one fails, so one run shows everything to fix.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check src tests bench || status=1; \
	$(BIN)/ruff format --check src tests bench || status=1; \
	$(BIN)/mypy --strict src || status=1; \
	exit $$status

# After adding or changing a guest sentence (`_("...")` in a template, `gettext`/`N_` in Python):
# collects every sentence into messages.pot and merges it into each language's messages.po. Then
# translate the entries left empty (and check those marked fuzzy); tests/test_i18n.py names them.
LOCALES := src/portico/locales
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --add-location=file --no-wrap --sort-by-file --project=Portico \
		-c "Translators:" -o $(LOCALES)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) --no-wrap --ignore-obsolete

# Installs what is missing when it can (root with apt-get). Otherwise the browser tests skip,
# except under CI=true, where this step fails.
browser-deps:
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing=" chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing for the browser tests:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q$$missing; \
	elif [ -n "$(IN_CI)" ]; then \
		echo "Missing for the browser tests:$$missing (install as root: apt-get install$$missing)" >&2; exit 1; \
	else \
		echo "Missing for the browser tests:$$missing; they will be skipped (as root: apt-get install$$missing)"; \
	fi

# nginx (Debian's) for tests/test_scale_out.py, which runs deploy/nginx-portico.conf in front of
# several instances; the tests start their own nginx, never the system's service. Same rules as above.
nginx-deps:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing for the scale-out tests: nginx"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; \
	elif [ -n "$(IN_CI)" ]; then \
		echo "Missing for the scale-out tests: nginx (install as root: apt-get install nginx)" >&2; exit 1; \
	else \
		echo "Missing for the scale-out tests: nginx; they will be skipped (as root: apt-get install nginx)"; \
	fi

# espeak-ng (Debian's) speaks the utterances tests/test_voice.py transcribes. Same rules as above.
voice-deps:
	@if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing for the voice tests: espeak-ng"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng; \
	elif [ -n "$(IN_CI)" ]; then \
		echo "Missing for the voice tests: espeak-ng (install as root: apt-get install espeak-ng)" >&2; exit 1; \
	else \
		echo "Missing for the voice tests: espeak-ng; they will be skipped (as root: apt-get install espeak-ng)"; \
	fi

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)
