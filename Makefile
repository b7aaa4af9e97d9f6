# porthole: `make run` starts a server and enrols this machine; `make test`
# runs every test. Both install missing Debian packages first.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all deps build run test test-unit asan clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Unit tests once more under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPORTHOLE_SANITIZE=ON -DPORTHOLE_E2E=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

test: build asan
	@cd $(ASAN_BUILD) && ctest --output-on-failure -L unit
	@cd $(BUILD) && ctest --output-on-failure

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

run: build
	@scripts/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
