#!/usr/bin/env sh
# The test runner behind `npm test`: Node's built-in runner over test/*.test.ts, under a virtual display when
# there is none, so that headless-gl (the GL backend) is tested too.
set -e
cd "$(dirname "$0")/.."
exec sh scripts/with-display.sh node --import tsx --test --test-reporter=spec test/*.test.ts
