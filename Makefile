# kandy-provisioner. `make run` starts the service locally; `make test` runs every test.

GO        ?= go
GOARCH    ?= $(shell $(GO) env GOARCH)
TOOLS_BIN := $(CURDIR)/.tools/bin
RIE       := $(TOOLS_BIN)/aws-lambda-rie
DYNALITE  := tools/node_modules/dynalite/cli.js

# The service is the root module; the local stack, the benchmarks and the
# end-to-end suite are the module in local/, tied to it by go.work. A
# Lambda is built from the service's go.mod alone (GOWORK=off), so what the
# local module requires never changes what is deployed.
PACKAGES := ./... ./local/...

# One Lambda per AWS::Serverless::Function in template.yaml; the logical id
# FooFunction is built from functions/foo.
FUNCTIONS := $(shell awk '/^  [A-Za-z0-9]+:$$/ {id=$$1; sub(":", "", id)} /Type: AWS::Serverless::Function/ {print id}' template.yaml)
fn_dir     = ./functions/$(shell echo '$(1)' | sed 's/Function$$//' | tr A-Z a-z)
GOBUILD    = GOWORK=off CGO_ENABLED=0 GOOS=linux $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w"

# The console, the frontend a developer copies (see its Makefile targets).
CONSOLE    := local/console
CONSOLE_JS := $(CONSOLE)/dist/console.js

# make run's ports that make signup, make token and make kandy-down/up use.
AUTH_PORT  ?= 9229
KANDY_PORT ?= 8090
LOCAL      := $(TOOLS_BIN)/kandy-local

# Programs the tests run: a Chrome or Chromium for the browser tests
# (CHROME_PATH, else the first of these on PATH), curl for the README's
# walkthrough. Where one is missing, apt-get installs it (through sudo
# unless make runs as root) if this system has apt-get; elsewhere make
# says what to install.
CHROME_NAMES := chromium chromium-browser google-chrome-stable google-chrome chrome
CHROME_PATH  ?=
SUDO         := $(if $(filter 0,$(shell id -u)),,sudo)

# cfn-lint and the SAM translator, for the template checks. .tools/bin/python3
# is python3 itself when it imports both; otherwise a virtual environment
# under .tools/python with these versions from PyPI.
CFN_LINT_VERSION       := 1.51.0
SAM_TRANSLATOR_VERSION := 1.110.0
PYTHON_VENV            := $(CURDIR)/.tools/python
PYTHON                 := $(TOOLS_BIN)/python3

.PHONY: all build test check-makefile tools chrome curl console console-check vet lint lint-template fuzz model bench storm generate mutation run run-deps local-bin signup token leave kandy-down kandy-up clean $(addprefix build-,$(FUNCTIONS))

all: build

## build: bin/<LogicalId>/bootstrap for every function, for linux on this host's architecture (or GOARCH)
build:
	@set -e; for id in $(FUNCTIONS); do \
		echo "build bin/$$id/bootstrap (linux/$(GOARCH))"; \
		$(MAKE) --no-print-directory -s build-$$id ARTIFACTS_DIR=$(CURDIR)/bin/$$id LAMBDA_GOARCH=$(GOARCH); \
	done

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
LAMBDA_GOARCH ?= arm64
$(addprefix build-,$(FUNCTIONS)):
	GOARCH=$(LAMBDA_GOARCH) $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap $(call fn_dir,$(@:build-%=%))

## tools: the local servers and checkers the tests and the local run use, installed from the project's own files
tools: $(addprefix $(TOOLS_BIN)/,aws-lambda-rie local-kms goaws staticcheck gremlins) tools/node_modules/.installed $(CONSOLE)/node_modules/.installed $(PYTHON)

# What make run runs, and no more: a first start builds no checker.
RUN_TOOLS := $(TOOLS_BIN)/local-kms $(TOOLS_BIN)/goaws tools/node_modules/.installed $(CONSOLE_JS)

# chrome and curl: what they check for, the Debian package, and what to
# install elsewhere.
chrome: NEED = $(foreach n,$(CHROME_NAMES),command -v $(n) >/dev/null ||) false
chrome: PACKAGE = chromium
chrome: ELSEWHERE = the browser tests need Chrome or Chromium: install one (Homebrew: brew install --cask chromium; Fedora: dnf install chromium), or set CHROME_PATH to it
curl: NEED = command -v curl >/dev/null
curl: PACKAGE = curl
curl: ELSEWHERE = the walkthrough test needs curl: install it with the package manager of your system
chrome curl:
	@$(if $(filter chrome,$@),$(if $(CHROME_PATH),test -x '$(CHROME_PATH)' || { echo 'CHROME_PATH=$(CHROME_PATH) is no executable'; exit 1; }; exit 0;))
	@if ! { $(NEED); }; then \
		if command -v apt-get >/dev/null; then \
			$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(PACKAGE); \
		else echo '$(ELSEWHERE)'; exit 1; fi; \
	fi

# Debian's python3 creates virtual environments only with python3-venv.
$(PYTHON):
	mkdir -p $(TOOLS_BIN)
	@if python3 -c 'import cfnlint, samtranslator' 2>/dev/null; then \
		echo "python3 has cfn-lint and aws-sam-translator"; \
		ln -sf "$$(command -v python3)" $@; \
	else \
		set -e; \
		python3 -m venv $(PYTHON_VENV) 2>/dev/null || { \
			$(SUDO) apt-get update -qq; \
			DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; \
			python3 -m venv $(PYTHON_VENV); }; \
		echo "pip install cfn-lint==$(CFN_LINT_VERSION) aws-sam-translator==$(SAM_TRANSLATOR_VERSION) into $(PYTHON_VENV)"; \
		$(PYTHON_VENV)/bin/python3 -m pip install --quiet --disable-pip-version-check \
			cfn-lint==$(CFN_LINT_VERSION) aws-sam-translator==$(SAM_TRANSLATOR_VERSION); \
		ln -sf $(PYTHON_VENV)/bin/python3 $@; \
	fi

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	touch $@

# The console is the frontend a developer copies: a folder with its own
# package.json and lock file (Amplify v6, openapi-fetch, TypeScript,
# openapi-typescript, esbuild), apart from the tools'.
$(CONSOLE)/node_modules/.installed: $(CONSOLE)/package.json $(CONSOLE)/package-lock.json
	cd $(CONSOLE) && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	touch $@

# local-kms and goaws are served by small mains of our own (tools/cmd/):
# theirs listen on every interface. Each program is a target of its own,
# so make run builds only the two it runs.
TOOLS_GO   := tools/go.mod tools/go.sum
TOOLS_MAIN := $(wildcard tools/cmd/internal/*/*.go)
$(TOOLS_BIN)/aws-lambda-rie: $(TOOLS_GO)
	cd tools && GOWORK=off $(GO) build -o $@ github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
$(TOOLS_BIN)/local-kms: $(TOOLS_GO) $(TOOLS_MAIN) $(wildcard tools/cmd/local-kms/*.go)
	cd tools && GOWORK=off $(GO) build -o $@ ./cmd/local-kms
$(TOOLS_BIN)/goaws: $(TOOLS_GO) $(TOOLS_MAIN) $(wildcard tools/cmd/goaws/*.go)
	cd tools && GOWORK=off $(GO) build -o $@ ./cmd/goaws
$(TOOLS_BIN)/staticcheck: $(TOOLS_GO)
	cd tools && GOWORK=off $(GO) build -o $@ honnef.co/go/tools/cmd/staticcheck
$(TOOLS_BIN)/gremlins: $(TOOLS_GO)
	cd tools && GOWORK=off $(GO) build -o $@ github.com/go-gremlins/gremlins/cmd/gremlins

# The console's API types, generated from api/openapi.yaml; make test
# type-checks the console strictly against them.
$(CONSOLE)/src/api.d.ts: api/openapi.yaml $(CONSOLE)/node_modules/.installed
	cd $(CONSOLE) && npm run --silent generate

# The bundle, by esbuild, which drops type imports: it depends on the
# sources, package.json and the lock only. A bundle of the same inputs,
# built in any clone, is taken from the user's cache, so a first start
# needs no npm ci of the console.
CONSOLE_CACHE := $(if $(filter undefined,$(origin XDG_CACHE_HOME)),$(HOME)/.cache,$(XDG_CACHE_HOME))/kandy-provisioner
CONSOLE_SRC   := $(CONSOLE)/package.json $(CONSOLE)/package-lock.json $(filter-out %.d.ts,$(wildcard $(CONSOLE)/src/*.ts))
$(CONSOLE_JS): $(CONSOLE_SRC)
	@set -e; cached=$(CONSOLE_CACHE)/console-$$(cat $(CONSOLE_SRC) | sha256sum | cut -c1-32).js; \
	if [ -s "$$cached" ]; then \
		echo "console bundle from $$cached"; mkdir -p $(@D); cp "$$cached" $@; \
	else \
		$(MAKE) --no-print-directory $(CONSOLE)/node_modules/.installed; \
		(cd $(CONSOLE) && npm run --silent build); \
		mkdir -p $(CONSOLE_CACHE); cp $@ "$$cached.tmp"; mv "$$cached.tmp" "$$cached"; \
	fi

## console: the console's bundle, local/console/dist/console.js
console: $(CONSOLE_JS)

console-check: $(CONSOLE)/src/api.d.ts
	cd $(CONSOLE) && npm run --silent check

vet:
	$(GO) vet $(PACKAGES)

## lint: staticcheck's default checks, and cfn-lint on template.yaml
lint: tools lint-template
	$(TOOLS_BIN)/staticcheck $(PACKAGES)

# Errors, warnings and informational findings all fail. A finding is
# accepted only by a resource's Metadata cfn-lint ignore_checks, with a
# comment that says why (local/samtemplate checks the comment).
lint-template: $(PYTHON)
	$(PYTHON) -c 'import sys; from cfnlint.runner import main; sys.exit(main())' --include-checks I -- template.yaml

## test: every unit, integration and end-to-end test, with the race detector, then the fuzz targets
test: $(if $(filter undefined,$(origin MAKEFILE_CHECKED)),check-makefile) tools console-check console chrome curl vet lint
	$(GO) test -race -count=1 -timeout 14m $(PACKAGES)
	$(MAKE) --no-print-directory fuzz

# A variable used but never defined expands to nothing and silently turns a
# step into a no-op: fail early, naming it.
check-makefile:
	@undefined=$$($(MAKE) --no-print-directory --warn-undefined-variables -n test run build mutation MAKEFILE_CHECKED=1 2>&1 >/dev/null | grep -i 'undefined variable' | sort -u); \
	if [ -n "$$undefined" ]; then echo "$$undefined"; echo "Makefile: define every variable it uses"; exit 1; fi

# Each native fuzz target, for FUZZTIME; the seed corpora run in every go test.
# A count, not a duration: a duration races Go's fuzz coordinator and can
# fail with "context deadline exceeded" and no crasher (golang/go#75804,
# fixed in go1.27). 100000 executions take 10 to 15 s a target here.
FUZZTIME ?= 100000x
FUZZ_TARGETS := FuzzDecodeCreate:./pkg/httpapi FuzzHandle:./pkg/httpapi FuzzHandle:./pkg/trigger \
	FuzzDecode:./pkg/kandy FuzzParse:./pkg/secrets FuzzHandle:./pkg/deprovision \
	FuzzCognitoFront:./local/cognitofront

## fuzz: run every fuzz target for FUZZTIME
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name $$pkg ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Mutation testing with gremlins (pinned in tools/go.mod): each package's
# own tests against the mutants of its code, one package and one worker at
# a time, as the machine is shared. Too slow for make test. Efficacy is
# killed / (killed + lived); docs/tests.md names the mutants that live.
MUTATION_PACKAGES := pkg/store pkg/signupretry pkg/trigger pkg/kandy pkg/deprovision pkg/reconcile pkg/httpapi pkg/provision
MUTATION_EFFICACY ?= 95
# A mutant's tests may take this many times the unmutated run's before it
# counts as timed out: the machine is shared, so leave room. -count=1: a
# cached unmutated run takes no time, and every mutant would time out.
MUTATION_TIMEOUT_COEFFICIENT ?= 10
MUTATION_DIR := $(CURDIR)/.tools/mutation

## mutation: gremlins over each of MUTATION_PACKAGES; prints the table and the mutants that lived, and fails below MUTATION_EFFICACY %
mutation: $(TOOLS_BIN)/gremlins
	@mkdir -p $(MUTATION_DIR); status=0; \
	printf '%-16s %7s %6s %12s %10s %9s\n' package killed lived 'not covered' 'timed out' efficacy; \
	for p in $(MUTATION_PACKAGES); do \
		log=$(MUTATION_DIR)/$$(echo $$p | tr / -).txt; \
		GOFLAGS=-count=1 $(TOOLS_BIN)/gremlins unleash --workers 1 --timeout-coefficient $(MUTATION_TIMEOUT_COEFFICIENT) ./$$p >$$log 2>&1 || { cat $$log; exit 1; }; \
		awk -v pkg=$$p -v min=$(MUTATION_EFFICACY) ' \
			/^Killed:/ { gsub(",", ""); killed = $$2; lived = $$4; uncovered = $$7; seen = 1 } \
			/^Timed out:/ { gsub(",", ""); timedout = $$3 } \
			END { if (!seen) exit 2; e = killed + lived ? 100 * killed / (killed + lived) : 100; \
				printf "%-16s %7d %6d %12d %10d %8.1f%%\n", pkg, killed, lived, uncovered, timedout, e; exit e < min }' $$log || status=1; \
	done; \
	for p in $(MUTATION_PACKAGES); do \
		sed -n "s|^ *LIVED \([A-Z_]*\) at \(.*\)|lived: $$p/\2 \1|p" $(MUTATION_DIR)/$$(echo $$p | tr / -).txt; \
	done; \
	if [ $$status -ne 0 ]; then echo "mutation: a package is below $(MUTATION_EFFICACY) % efficacy (logs in $(MUTATION_DIR))"; fi; \
	exit $$status

# make test runs the model test on its fixed seed and one random one.
SEEDS ?= 20

## model SEEDS=n: the model-based concurrency test, its histories checked for linearizability, on the fixed seed and n random ones, each reported as it ends
model: tools
	MODEL_SEEDS=$(SEEDS) $(GO) test -v -race -count=1 -timeout $$(( 10 + $(SEEDS) ))m -run '^TestModelBasedConcurrency$$' ./local/e2e

# The Go client of the HTTP API's OpenAPI description; a test runs this
# target with APICLIENT elsewhere and fails when the committed file differs.
APICLIENT ?= api/apiclient/apiclient.gen.go

## generate: api/apiclient, the Go client of api/openapi.yaml, with oapi-codegen (pinned in tools/go.mod)
generate:
	cd tools && GOWORK=off $(GO) tool oapi-codegen -config ../api/apiclient/oapi-codegen.yaml -o $(abspath $(APICLIENT)) ../api/openapi.yaml

# make run keeps its state in .local-data (or DATA_DIR); FRESH=1 keeps none.
FRESH ?=

## run: the whole service on loopback (see the README), its state kept in .local-data; FRESH=1 starts afresh; Ctrl-C stops it
# What it needs is built side by side: the two npm installs wait on the
# disk and the cache, the Go builds on the CPU.
run:
	@$(MAKE) --no-print-directory -j4 run-deps
	FRESH='$(FRESH)' exec $(LOCAL)

run-deps: $(RUN_TOOLS) $(addprefix run-build-,$(FUNCTIONS)) local-bin

# Each function a job of its own, so that -j links them side by side.
run-build-%:
	@$(MAKE) --no-print-directory -s build-$* ARTIFACTS_DIR=$(CURDIR)/bin/$* LAMBDA_GOARCH=$(GOARCH)

local-bin:
	$(GO) build -trimpath -o $(LOCAL) ./local/cmd/kandy-local

## signup USER=name: sign name@example.com up in the local pool and confirm it, which fires the post-confirmation trigger
## token USER=name: print an access token of a local user (USER_PASSWORD_AUTH)
## leave USER=name: delete a local user with their own token (Cognito DeleteUser), which deprovisions them
# USER must come from the command line, not be the login name; it reaches
# the program through the environment, so no quoting can break.
signup token leave: export KANDY_LOCAL_USER = $(value USER)
signup token leave:
	$(if $(filter command line,$(origin USER)),,$(error give a name: make $@ USER=name))
	@$(GO) build -trimpath -o $(LOCAL) ./local/cmd/kandy-local
	@AUTH_PORT=$(AUTH_PORT) $(LOCAL) $@ "$$KANDY_LOCAL_USER"

## kandy-down: make the local Kandy simulator fail every call (HTTP 500) until kandy-up
kandy-down:
	@curl -sS -X POST http://127.0.0.1:$(KANDY_PORT)/_sim/outage

## kandy-up: make the local Kandy simulator healthy again
kandy-up:
	@curl -sS -X DELETE http://127.0.0.1:$(KANDY_PORT)/_sim/outage

## bench: measure sizes, cold start, warm latency, RSS and upstream calls; writes local/bench/results.{md,json}; then the storm
bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./pkg/provision ./pkg/httpapi | tee local/bench/gobench.txt
	@# A missed budget fails make bench, but only after the storm has run.
	@bench=0; $(GO) run ./local/bench || bench=$$?; \
	$(GO) run ./local/bench/storm $(STORM_FLAGS) || exit $$?; \
	exit $$bench

## storm: 60 sign-ups through make run's stack with Kandy down 4 s, then 60 s; writes local/bench/storm-results.{md,json} and local/bench/recovery.svg
# STORM_FLAGS passes options, e.g. STORM_FLAGS="-n 100 -outages 10s".
STORM_FLAGS ?=
storm: tools build
	$(GO) run ./local/bench/storm $(STORM_FLAGS)

clean:
	rm -rf bin .tools tools/node_modules $(CONSOLE)/node_modules $(CONSOLE)/dist $(CONSOLE)/src/api.d.ts $(CONSOLE_CACHE)
