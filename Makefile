# fsgit: build, test and demo targets. `make help` lists them.
GO       ?= go
BIN      ?= bin/fsgit
PKGS     ?= ./...
TESTFLAGS ?= -count=1 -timeout 40m

.PHONY: help build test test-short e2e lint vet-sites demo demo-local demo-down serve-demo images bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/fsgit (the front for cached runs), bin/fsgit-core (the full fsgit) and bin/fsgit-iceberg
	GO=$(GO) scripts/build.sh $(dir $(BIN))

test: ## run every test (needs the dependencies that scripts/setup.sh installs)
	$(GO) test $(TESTFLAGS) $(PKGS)

test-short: ## tests that need no MariaDB, Docker image or network
	$(GO) test -short $(TESTFLAGS) $(PKGS)

e2e: ## the end-to-end test: sites/example on three systemd nodes from bare Debian (test/e2e; torn down after)
	FSGIT_E2E=1 $(GO) test -count=1 -timeout 30m -v -run TestFleet ./test/e2e/

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags lean ./cmd/fsgit

vet-sites: build ## fsgit vet on every site under sites/
	@for s in sites/*/; do echo "vet $$s"; ./$(BIN) vet --site $$s || exit 1; done

images: ## build the local images: Weaviate, the vectorizer stand-in, the systemd node, the git server (no registry here)
	scripts/build-images.sh

demo: ## the example site on four systemd nodes (three stores, monitoring-1), converging from a signed git push (installs what it needs first)
	scripts/setup.sh
	scripts/fleet-demo.sh

demo-local: ## the older sandbox demo: one agent per node on this machine, under sandbox roots
	scripts/setup.sh
	scripts/demo.sh

demo-down: ## stop both demos and remove what they made (containers, network, volume, files)
	scripts/demo-down.sh
	scripts/fleet.sh down

serve-demo: build ## the running demo's fleet in a browser: fsgit serve on http://127.0.0.1:8080/
	scripts/fleet.sh serve

bench: ## benchmarks (figures printed, nothing asserted)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean: ## remove build output
	rm -rf bin
