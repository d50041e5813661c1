# Every target installs what it needs first (scripts/setup-host.sh: apt packages as root, npm ci).
SHELL := /bin/bash
UC := node bin/ultracloud.js

.PHONY: setup build-cli lint test test-unit test-e2e doctor cluster-smoke fresh-smoke smoke baremetal-iso hardware-smoke-preflight guards-eval guards-build stop clean bench-ssh

setup:
	@scripts/setup-host.sh

build-cli: setup
	npm run build

## The README's test command: unit tests and the bounded end-to-end tests (real guests).
test: setup
	npm run build
	npm run typecheck
	npm run lint
	npx vitest run $(VITEST_ARGS)

## Formatting and lint (biome) and the layering rule (dependency-cruiser on dist/).
lint: setup
	npm run build
	npm run lint

test-unit: setup
	npm run build
	npx vitest run test/unit

test-e2e: setup
	npm run build
	npx vitest run test/e2e

## The main job: clean, build the lab image, boot six guests, run the smoke lane, stop.
fresh-smoke: setup
	$(UC) fresh-smoke $(ARGS)

## CI's name for the same flow (as in the seeds).
cluster-smoke: fresh-smoke

smoke: setup
	$(UC) smoke $(ARGS)

## The bare-metal install proof (lab ISO, two QEMU chassis) and the hardware handoff.
baremetal-iso: setup
	$(UC) baremetal-iso $(ARGS)

hardware-smoke-preflight: setup
	$(UC) hardware-smoke preflight $(ARGS)

## The seeds' canonical-profile guards (PROFILE=ultracloud needs the monorepo: ULTRACLOUD_MONOREPO=...).
guards-eval: setup
	$(UC) --profile $(or $(PROFILE),ultracloud) guards eval

guards-build: setup
	$(UC) --profile $(or $(PROFILE),ultracloud) guards build

doctor: setup
	$(UC) doctor

stop: setup
	$(UC) stop

clean: setup
	$(UC) clean

bench-ssh: setup
	node scripts/bench-ssh.js
