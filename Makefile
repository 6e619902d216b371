# fsgit: build, test and demo targets. `make help` lists them.
GO       ?= go
BIN      ?= bin/fsgit
PKGS     ?= ./...
TESTFLAGS ?= -count=1 -timeout 40m

.PHONY: help build test test-short lint vet-sites demo demo-down serve-demo images bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/fsgit and its Iceberg helper bin/fsgit-iceberg
	$(GO) build -o $(BIN) ./cmd/fsgit
	$(GO) build -o $(dir $(BIN))fsgit-iceberg ./cmd/fsgit-iceberg

test: ## run every test (needs the dependencies that scripts/setup.sh installs)
	$(GO) test $(TESTFLAGS) $(PKGS)

test-short: ## tests that need no MariaDB, Docker image or network
	$(GO) test -short $(TESTFLAGS) $(PKGS)

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

vet-sites: build ## fsgit vet on every site under sites/
	@for s in sites/*/; do echo "vet $$s"; ./$(BIN) vet --site $$s || exit 1; done

images: ## build the local Weaviate and vectorizer images (no registry here)
	scripts/build-images.sh

demo: ## converge the example stack on this machine with one agent per node (installs what it needs first)
	scripts/setup.sh
	scripts/demo.sh

demo-down: ## stop the demo and remove what it made
	scripts/demo-down.sh

serve-demo: build ## the running demo's fleet in a browser: fsgit serve on http://127.0.0.1:8080/
	./$(BIN) serve --repo file://$${FSGIT_DEMO_DIR:-/tmp/fsgit-demo}/repo.git --interval 5s

bench: ## benchmarks (figures printed, nothing asserted)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean: ## remove build output
	rm -rf bin
