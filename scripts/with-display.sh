#!/usr/bin/env sh
# Runs a command under a virtual X display (xvfb-run) when there is none and xvfb-run exists, so that
# headless-gl is available; otherwise runs it as it is (gpu.js then has webasm and cpu only).
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1024x768x24" "$@"
fi
exec "$@"
