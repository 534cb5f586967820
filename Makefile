# Convenience targets around the go tool. CI runs .ci/run, not this file.
GO ?= go
GOFILES = $(shell find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/node_modules/*')

.PHONY: build test lint snapshot ci clean

build: ## otad and otactl in the repository root
	$(GO) build -trimpath -o . ./cmd/otad ./cmd/otactl

test: ## the README's test command, with the race detector
	$(GO) test -race ./...

lint: ## gofmt check, go mod tidy check, go vet and staticcheck (pinned, as in CI)
	@out="$$(gofmt -l $(GOFILES))"; \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

snapshot: ## release archives of every platform in ./dist, without publishing (needs goreleaser)
	goreleaser release --snapshot --clean

ci: ## the whole CI script
	bash .ci/run

clean:
	rm -rf otad otactl dist
