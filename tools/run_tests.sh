#!/usr/bin/env bash
# The README's test command: sets up the environment if needed (tools/setup_env.sh), then runs the
# whole test-suite on the CPU. Extra arguments go to pytest (e.g. -k mapper, -m "not slow").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup_env.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec python -m pytest -q "$@"
