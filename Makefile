# Developer tasks. `make help` lists them.
PY := .venv/bin/python
BABEL := .venv/bin/pybabel

.PHONY: help install test messages compile serve wheel bench

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install: ## the venv with the test extras, and the npm test tools
	npm ci && python3 -m venv .venv && .venv/bin/pip install -e '.[test]'

test: ## every test (SQLite and PostgreSQL, browser, ruff, mypy)
	$(PY) -m pytest

messages: ## extract every wording into locales/messages.pot and merge it into each catalog
	$(BABEL) extract -F babel.cfg -k N_ -k _ --no-location --sort-output --omit-header -o locales/messages.pot .
	$(BABEL) update -i locales/messages.pot -d locales --previous --ignore-pot-creation-date
	$(PY) -c "from babel.messages.pofile import read_po, write_po; p='locales/en/LC_MESSAGES/messages.po'; \
	c=read_po(open(p,'rb'), locale='en'); [setattr(m,'string',m.id) or m.flags.discard('fuzzy') for m in c if m.id]; \
	write_po(open(p,'wb'), c)"

compile: ## compile the catalogs (the .mo files are committed)
	$(BABEL) compile -d locales --statistics

serve: ## the service on the embedded default
	.venv/bin/survey-engine serve

wheel: ## a wheel in dist/ (carries templates, static files, compiled catalogs, migrations, flows, starter config)
	$(PY) -m pip wheel --no-deps -w dist .
bench: ## every SPEC §7 benchmark, one table of figure, target and verdict (bench/run; long)
	bench/run
