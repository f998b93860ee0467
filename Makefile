# closeout — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV_BIN := $(CURDIR)/.venv/bin
DATA := $(CURDIR)/data
DEMO_FIRST := 2022-03-13
DEMO_LAST := 2022-03-19
HARD_DAY := 2022-03-20
DEMO_SMTP_PORT ?= 8025

# The embedded default: SQLite and files under data/, a local SMTP sink that keeps .eml files.
DEMO_ENV := AIRFLOW_HOME=$(DATA)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	CLOSEOUT_INBOX=$(DATA)/inbox \
	CLOSEOUT_DATA=$(DATA) \
	CLOSEOUT_RECIPIENTS=ops-duty@quzhou.closeout.invalid,city-office@quzhou.closeout.invalid \
	CLOSEOUT_OPS_EMAIL=ops-duty@quzhou.closeout.invalid \
	AIRFLOW_CONN_SMTP_DEFAULT='smtp://127.0.0.1:$(DEMO_SMTP_PORT)?disable_ssl=true&disable_tls=true&from_email=closeout%40quzhou.closeout.invalid'

# make bench: which scales and stores, and whether to run `airflow dags test` too (slow); e.g. a reduced run:
#   make bench SCALES=province BACKENDS=postgresql AIRFLOW=no
SCALES ?= city,province,country
BACKENDS ?= sqlite,postgresql
AIRFLOW ?= yes
# make bench-reclose: how many city days to publish and then re-close in one run, on which store
RECLOSE_DAYS ?= 365
RECLOSE_BACKEND ?= postgresql

.PHONY: help install demo airflow test lint bench bench-reclose bench-board bench-render clean-demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install: ## build .venv from uv.lock (Python 3.11) with the project installed editable, bytecode compiled once
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q "uv==$(UV_VERSION)"
	$(UV) sync --frozen --python 3.11 --compile-bytecode
	@# PYTHONDONTWRITEBYTECODE machines would otherwise compile every import in every Airflow process
	@$(VENV_BIN)/python -m compileall -q src dags plugins bench

system-deps: ## Debian packages the bulletin's PDF and charts need (Pango, Noto CJK fonts), installed when missing
	@bash scripts/system-deps.sh runtime

demo: install system-deps ## close out the sample week 2022-03-13..19, then play the hard day 2022-03-20 (receipts, reminders, 缺报, 补报)
	@mkdir -p $(DATA)/inbox && cp -rn $(CURDIR)/sample/inbox/. $(DATA)/inbox/
	$(DEMO_ENV) $(VENV_BIN)/airflow db migrate > $(DATA)/airflow-db-migrate.log
	@$(VENV_BIN)/python -m closeout.mailsink --dir $(DATA)/mail --port $(DEMO_SMTP_PORT) & sink=$$!; \
	trap 'kill $$sink 2>/dev/null' EXIT; sleep 1; \
	day=$(DEMO_FIRST); status=0; \
	while [[ "$$day" < "$(DEMO_LAST)" || "$$day" == "$(DEMO_LAST)" ]]; do \
		echo "== airflow dags test daily_closeout $$day"; \
		$(DEMO_ENV) $(VENV_BIN)/airflow dags test daily_closeout $$day > $(DATA)/dags-test-$$day.log 2>&1 || status=1; \
		$(DEMO_ENV) $(VENV_BIN)/closeout status $$day || status=1; \
		day=$$(date -d "$$day + 1 day" +%F); \
	done; \
	echo; echo "== the hard day $(HARD_DAY): files arrive over the afternoon"; \
	mkdir -p $(DATA)/inbox/$(HARD_DAY); \
	for at in 15:00 17:30 19:00 20:30; do \
		step=$(CURDIR)/sample/afternoon/$(HARD_DAY)/$${at/:/-}; \
		[[ -d $$step ]] && cp -f $$step/* $(DATA)/inbox/$(HARD_DAY)/ && echo "   $$at files arrive: $$(ls $$step | tr '\n' ' ')"; \
		echo "   $$at closeout_intake (judge, receipts, reminders)"; \
		$(DEMO_ENV) $(VENV_BIN)/airflow dags test closeout_intake $(HARD_DAY)T$$at:00+08:00 >> $(DATA)/dags-test-$(HARD_DAY)-intake.log 2>&1 || status=1; \
	done; \
	echo "   21:00 daily_closeout (开化县 has sent nothing: 缺报, its task and the run stay red)"; \
	$(DEMO_ENV) $(VENV_BIN)/airflow dags test daily_closeout $(HARD_DAY) > $(DATA)/dags-test-$(HARD_DAY).log 2>&1; \
	cp -f $(CURDIR)/sample/afternoon/$(HARD_DAY)/22-00/* $(DATA)/inbox/$(HARD_DAY)/; \
	echo "   22:00 开化县's file arrives late; closeout_intake judges it, daily_closeout is run again: one 补报 edition with its figures"; \
	$(DEMO_ENV) $(VENV_BIN)/airflow dags test closeout_intake $(HARD_DAY)T22:00:00+08:00 >> $(DATA)/dags-test-$(HARD_DAY)-intake.log 2>&1 || status=1; \
	$(DEMO_ENV) $(VENV_BIN)/airflow dags test daily_closeout $(HARD_DAY) >> $(DATA)/dags-test-$(HARD_DAY).log 2>&1 || status=1; \
	$(DEMO_ENV) $(VENV_BIN)/closeout status $(HARD_DAY) || status=1; \
	echo; echo "Bulletins: $(DATA)/outbox/<date>/<edition>/bulletin.html  Mails (bulletins, receipts, reminders, alerts): $(DATA)/mail/*.eml  Logs: $(DATA)/dags-test-<date>.log"; \
	exit $$status

airflow: install system-deps ## the whole stack locally (UI on :8080, LocalExecutor, mail sink, sample inbox); Ctrl-C stops it
	bash scripts/local-stack.sh

test: install ## run every test (needs PostgreSQL on 127.0.0.1:5432, trust auth, database test; two lanes at once)
	@bash scripts/system-deps.sh test
	bash scripts/run-tests.sh

lint: install ## ruff, including Airflow 3 migration rules (AIR3)
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

bench: install ## time one day at city, province and country scale on SQLite and PostgreSQL, check the store (docs/PERFORMANCE.md)
	$(VENV_BIN)/python -m bench.run --scales $(SCALES) --backends $(BACKENDS) $(if $(filter no,$(AIRFLOW)),--skip-airflow)
	$(VENV_BIN)/python -m bench.task_cost
	$(VENV_BIN)/python -m bench.render

bench-reclose: install ## time re-closing a year of city days in one run (closeout reclose FROM TO), check the cascade
	$(VENV_BIN)/python -m bench.reclose --days $(RECLOSE_DAYS) --backend $(RECLOSE_BACKEND)

bench-board: install ## time the 日清日结看板's data layer: 2,850 units × 14 days on SQLite and PostgreSQL, check the cells
	$(VENV_BIN)/python -m bench.board

bench-render: install ## time rendering one edition (HTML, text, 14-day charts, PDF) for a city and a country, check its email's size
	$(VENV_BIN)/python -m bench.render

clean-demo: ## remove data/ (store, archive, outbox, mails) to run the demo from scratch
	rm -rf $(DATA)
