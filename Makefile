# porthole: `make run` starts a server and enrols this machine; `make test`
# runs every test. Both install missing Debian packages first.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all deps build run test test-unit asan test-asan-e2e clean bench \
	bench-smoke bench-build fuzz fuzz-build test-fuzz

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Unit tests and the three programs once more under AddressSanitizer +
# UndefinedBehaviorSanitizer; the e2e-asan tests run those programs.
asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPORTHOLE_SANITIZE=ON -DPORTHOLE_E2E=OFF \
		-DPORTHOLE_CONSOLE=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Test programs run two at a time (each e2e program has its own ports and
# directories; docs/testing.md), mostly waiting on the processes they drive.
TEST_JOBS ?= 2

# Every step runs even after one fails; make test fails if any did.
test: build asan fuzz-build
	@rc=0; \
	(cd $(ASAN_BUILD) && ctest --output-on-failure -L unit -j $(TEST_JOBS)) || rc=1; \
	(cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz -j $(TEST_JOBS)) || rc=1; \
	(cd $(ASAN_BUILD) && ctest --output-on-failure -L e2e-asan -j $(TEST_JOBS)) || rc=1; \
	(cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS)) || rc=1; \
	exit $$rc

test-asan-e2e: asan
	@cd $(ASAN_BUILD) && ctest --output-on-failure -L e2e-asan -j $(TEST_JOBS)

test-unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

run: build
	@scripts/run.sh

# libFuzzer harnesses (tests/fuzz, docs/fuzzing.md), built with clang in
# their own directory. `make test` replays their corpora and reproducers;
# `make fuzz` fuzzes each for FUZZ_SECONDS (FUZZ=a,b picks harnesses) and
# prints executions, exec/s and coverage.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

fuzz-build: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTHOLE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz-harnesses

test-fuzz: fuzz-build
	@cd $(FUZZ_BUILD) && ctest --output-on-failure -L fuzz

fuzz: fuzz-build
	@python3 tests/fuzz/run.py --bin $(FUZZ_BUILD)/fuzz \
		--work $(FUZZ_BUILD)/fuzz-work --seconds $(FUZZ_SECONDS) \
		$(if $(FUZZ),--only $(FUZZ))

# Benchmarks against OpenSSH on loopback (bench/run.py; not part of `make
# test`): optimised binaries in their own build directory. BENCH_ARGS passes
# options (--quick, --scale X, --perf DIR, --rows 1,3); BENCH_SCALE works too.
BENCH_BUILD ?= build-bench

bench-build:
	@scripts/deps.sh --bench
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DPORTHOLE_E2E=OFF \
		"-DCMAKE_C_FLAGS=-g" >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS) --target portholed porthole-agent porthole
	@if cmake --build $(BENCH_BUILD) --target help | grep -q porthole-loadgen; then \
		cmake --build $(BENCH_BUILD) -j $(JOBS) --target porthole-loadgen; fi

bench: bench-build
	@PORTHOLE_BIN=$(CURDIR)/$(BENCH_BUILD)/bin python3 bench/run.py $(BENCH_ARGS)

bench-smoke: bench-build
	@PORTHOLE_BIN=$(CURDIR)/$(BENCH_BUILD)/bin python3 bench/run.py --smoke $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
