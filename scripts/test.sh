#!/usr/bin/env sh
# The test runner behind `npm test`: Node's built-in runner over test/*.test.ts. When there is no X display
# but xvfb-run exists, the run goes under a virtual display so that headless-gl (the GL backend) is tested.
set -e
cd "$(dirname "$0")/.."
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1024x768x24" node --import tsx --test --test-reporter=spec test/*.test.ts
fi
exec node --import tsx --test --test-reporter=spec test/*.test.ts
