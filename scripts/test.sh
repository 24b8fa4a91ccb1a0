#!/usr/bin/env sh
# The test runner behind `npm test`: Node's built-in runner over test/*.test.ts, under a virtual display when
# there is none, so that headless-gl (the GL backend) is tested too.
set -e
cd "$(dirname "$0")/.."
# the webgpu backend runs on SwiftShader (Debian chromium ships its Vulkan driver) unless a Vulkan driver is named
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
fi
# test files may be named (.ci/run's pass on a second Node version runs a subset); by default every one
if [ "$#" -eq 0 ]; then set -- test/*.test.ts; fi
exec sh scripts/with-display.sh node --import tsx --test --test-reporter=spec "$@"
