# One task runner for users, developers and CI. Needs only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DATA := demo-data
DEMO_STORE := out/demo-store
DEMO_PERIOD := 2026-10
DEMO_EARLIER := 2026-08 2026-09
# The portal's demo users: demo-only passwords, printed by `make demo`; never use them on real data.
DEMO_USERS := out/demo-users.toml
DEMO_CARRIER := CLEC03
DEMO_PASSWORD := demo-only-password

.PHONY: demo test bench lint readme clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing carrier_sla and its dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(PY) -m pip install --upgrade pip > $(VENV)/install.log 2>&1 && \
	  $(PY) -m pip install -e '.[test]' >> $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	touch $@

$(DEMO_DATA)/orders.csv: | $(VENV)/.installed
	$(PY) -m carrier_sla generate --out $(DEMO_DATA) --period $(DEMO_PERIOD) --periods 3 --scale 20000 --seed 1

$(DEMO_USERS): | $(VENV)/.installed
	@mkdir -p $(dir $@)
	@echo "$(DEMO_PASSWORD)" | $(PY) -m carrier_sla user add demo-clec --users $@ --carrier $(DEMO_CARRIER) --password-stdin
	@echo "$(DEMO_PASSWORD)" | $(PY) -m carrier_sla user add demo-staff --users $@ --role staff --password-stdin

demo: $(VENV)/.installed $(DEMO_DATA)/orders.csv $(DEMO_USERS)
	@rm -rf $(DEMO_STORE)  # a fresh store each time: the same output every time, whatever ran before
	@for p in $(DEMO_EARLIER); do echo "carrier-sla run --period $$p (quiet: the months before, for escalation)"; \
	  $(PY) -m carrier_sla run --plan example-qc --data $(DEMO_DATA) --period $$p --out $(DEMO_STORE) --quiet || exit $$?; done
	$(PY) -m carrier_sla run --plan example-qc --data $(DEMO_DATA) --period $(DEMO_PERIOD) --out $(DEMO_STORE)
	@echo
	@echo "The CLEC portal on the demo store (demo users; the password is for this demo only):"
	@echo "  $(PY) -m carrier_sla serve --store $(DEMO_STORE) --users $(DEMO_USERS)"
	@echo "  then open http://127.0.0.1:8400/ and sign in as demo-clec (sees $(DEMO_CARRIER) only)"
	@echo "  or demo-staff (every carrier), password: $(DEMO_PASSWORD)"

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run --sizes 1000000,5000000,20000000 --real 8000000

# Run every example of README.md in a scratch folder and rewrite its outputs from that run
# (review with git diff); tests/test_readme_examples.py checks that they match.
readme: $(VENV)/.installed
	$(PY) -m tests.readme_examples --write

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet ruff mypy pandas-stubs
	$(VENV)/bin/ruff check carrier_sla tests benchmarks
	$(VENV)/bin/ruff format --check carrier_sla tests benchmarks
	$(VENV)/bin/mypy carrier_sla benchmarks

clean:
	rm -rf $(VENV) out $(DEMO_DATA) bench-data *.egg-info
