# Two commands a new user needs (README): `make run` and `make test`. Each sets up .venv
# from nothing but the system Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The KCL MultiLangDaemon: the jars requirements/kcl/pom.xml names (it says why they are not
# the ones amazon-kclpy's pom lists), fetched with Maven into KCL_JARS. amazon-kclpy (the
# Python side of the protocol) is still installed: its installer insists on the jars of its own
# pom, which it then takes from the local Maven repository; the daemon does not use that copy.
KCLPY_VERSION := 3.1.3
KCL_POM := requirements/kcl/pom.xml
KINESIS_LOCAL_VERSION := 0.6.2
# The CDK's own CLI (deploy/: `cdk synth` in tests/deploy, `cdk deploy` for users).
AWS_CDK_CLI_VERSION := 2.1148.1
TOOLS := .stockpipe
KCL_JARS := $(TOOLS)/kcl-jars
KCL_STAMP := $(KCL_JARS)/.fetched
NODE_STAMP := $(TOOLS)/node/.installed
# ministack's Kinesis for the long sink benchmarks (stockpipe/bench/services.py says why); it
# pins its own botocore, so it gets a venv of its own.
MINISTACK_VERSION := 1.5.33
# ministack decodes the KCL daemon's CBOR requests with cbor2, which it does not declare.
CBOR2_VERSION := 6.2.1
MINISTACK_VENV := $(TOOLS)/ministack-venv
MINISTACK_STAMP := $(MINISTACK_VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-sinks ministack clean setup lock

setup: $(STAMP) $(KCL_STAMP) $(NODE_STAMP)

# Every extra (each deployable's, dev, deploy), at the versions locked in CONSTRAINTS: a fresh
# machine installs exactly what CI tested. `make lock` re-resolves them (see README).
EXTRAS := consumer,producer,lake,trend,dev,deploy
comma := ,
CONSTRAINTS := requirements/constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Re-resolve the newest versions the pyproject ranges allow, for every Python >= 3.11 (the
# Lambda runs 3.13), then install them: run the tests before committing the new lock.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
	    --universal --python-version 3.11 --no-header --quiet --upgrade -o $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'

$(KCL_STAMP): $(STAMP) $(KCL_POM)
	rm -rf $(TOOLS)/kclpy $(KCL_JARS) && mkdir -p $(TOOLS)/kclpy $(KCL_JARS)
	mvn --batch-mode --quiet -f $(KCL_POM) dependency:copy-dependencies \
	    -DincludeScope=runtime -DoutputDirectory=$(abspath $(KCL_JARS))
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
	    amazon-kclpy==$(KCLPY_VERSION) -d $(TOOLS)/kclpy
	tar -xzf $(TOOLS)/kclpy/amazon_kclpy-$(KCLPY_VERSION).tar.gz -C $(TOOLS)/kclpy
	# The shipped pom is a bare dependency list: give it coordinates so Maven can read it.
	sed 's#<modelVersion>4.0.0</modelVersion>#&<groupId>local.stockpipe</groupId><artifactId>kclpy-jars</artifactId><version>1</version><packaging>pom</packaging>#' \
	    $(TOOLS)/kclpy/amazon_kclpy-$(KCLPY_VERSION)/pom.xml > $(TOOLS)/kclpy/pom.xml
	mvn --batch-mode --quiet -f $(TOOLS)/kclpy/pom.xml dependency:resolve -DexcludeTransitive=true
	KCL_MVN_REPO_SEARCH_URL=file://$(HOME)/.m2/repository/ \
	    $(BIN)/python -m pip install --quiet amazon-kclpy==$(KCLPY_VERSION)
	touch $(KCL_STAMP)

$(NODE_STAMP): Makefile
	mkdir -p $(TOOLS)/node
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node \
	    kinesis-local@$(KINESIS_LOCAL_VERSION) aws-cdk@$(AWS_CDK_CLI_VERSION)
	touch $(NODE_STAMP)

ministack: $(MINISTACK_STAMP)

$(MINISTACK_STAMP): Makefile
	rm -rf $(MINISTACK_VENV)
	$(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/python -m pip install --quiet \
	    ministack==$(MINISTACK_VERSION) cbor2==$(CBOR2_VERSION)
	touch $(MINISTACK_STAMP)

run: setup
	$(BIN)/stockpipe demo --workdir out --pipeline

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/stockpipe bench core

# The sinks at 20 ms per AWS call (README, Performance): catch-up, latency, a 10-minute soak.
bench-sinks: setup ministack
	$(BIN)/stockpipe bench catchup
	$(BIN)/stockpipe bench latency
	$(BIN)/stockpipe bench soak --minutes 10

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
