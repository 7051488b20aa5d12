# herald — top-level commands. `make test` and `make run` do everything, dependencies included.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-asan unit e2e-deps e2e test run bench install-pgext format clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# AddressSanitizer + UndefinedBehaviorSanitizer build: unit tests run in both builds, and the
# end-to-end suite drives this binary, so a memory error anywhere fails `make test`.
build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

unit: build build-asan
	@ctest --test-dir $(BUILD) --output-on-failure
	@ctest --test-dir $(ASAN_BUILD) --output-on-failure

e2e-deps:
	@cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error

e2e: build-asan e2e-deps
	@cd tests/e2e && HERALD_BIN=$(CURDIR)/$(ASAN_BUILD)/herald HERALD_CRON_DUMP=$(CURDIR)/$(ASAN_BUILD)/cron_dump HERALD_GQL_DUMP=$(CURDIR)/$(ASAN_BUILD)/gql_dump HERALD_PGEXT=$(CURDIR)/$(ASAN_BUILD)/pgext/herald_capture.so npm test

test: unit e2e

# The quickstart: herald on the embedded SQLite default (examples/quickstart/herald.db) with a
# local receiver printing each delivery; Ctrl-C stops both. See scripts/run-quickstart.sh.
run: build
	@HERALD_BIN=$(CURDIR)/$(BUILD)/herald bash scripts/run-quickstart.sh

bench: build e2e-deps
	@bash bench/e2e.sh
	@cd tests/e2e && HERALD_BIN=$(CURDIR)/$(BUILD)/herald node bench/graphql_fanout.js

# Installs the native capture module into the library directory of the PostgreSQL it was built
# for: the pg_config CMake found (PostgreSQL 15's first; another major version with
# `cmake -S . -B build -DHERALD_PG_CONFIG=/usr/lib/postgresql/16/bin/pg_config`). The server
# refuses a module built for another major version, and `capture: auto` then says so.
install-pgext: build
	@test -f $(BUILD)/pgext/herald_capture.so || { echo "install-pgext: $(BUILD)/pgext/herald_capture.so was not built (PostgreSQL server headers missing?)" >&2; exit 1; }
	@pgc=$$(sed -n 's/^HERALD_PG_CONFIG:FILEPATH=//p' $(BUILD)/CMakeCache.txt); \
	  echo "install-pgext: $$($$pgc --version): $$($$pgc --pkglibdir)/herald_capture.so"; \
	  install -m 755 $(BUILD)/pgext/herald_capture.so "$$($$pgc --pkglibdir)/herald_capture.so"

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'pgext/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
