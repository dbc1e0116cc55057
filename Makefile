# vitc: the first two targets are the README's set-up commands.
#   make demo  - install deps, build, train on the embedded synthetic set
#   make test  - install deps, fetch the digits data, run the whole test suite
GO      ?= go
TAGS    ?= openblas
BIN     := bin/vitc
DIGITS  := .cache/digits.csv.gz
export GOTOOLCHAIN ?= auto

.PHONY: demo test build build-purego setup ort digits bench fmt vet clean

demo: build
	$(BIN) train

# The suite runs as is, then the way other machines would run it: one core,
# other CPUs' OpenBLAS kernels, the pure-Go build, arm64 under emulation
# (scripts/test-portability.sh).
test: setup digits ort
	VITC_DIGITS=$(CURDIR)/$(DIGITS) $(GO) test -tags '$(TAGS)' ./...
	VITC_DIGITS=$(CURDIR)/$(DIGITS) GO=$(GO) TAGS=$(TAGS) scripts/test-portability.sh

build: setup
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/vitc

# The pure-Go build: no C toolchain, no OpenBLAS (about 2-5x slower).
build-purego:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/vitc

setup:
	@scripts/setup.sh

# onnxruntime-node in .cache/ort, for the test that runs the ONNX export
# (it skips, saying why, where node or the package is missing).
ort:
	@scripts/setup-ort.sh

digits: $(DIGITS)
$(DIGITS):
	scripts/fetch-digits.sh $@

fmt:
	gofmt -l -w .

vet:
	$(GO) vet -tags '$(TAGS)' ./...

clean:
	rm -rf bin runs
