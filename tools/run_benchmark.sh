#!/usr/bin/env bash
# The README's main command: sets up the environment if needed, then runs the synthetic SFOASS
# benchmark end to end (data -> source model -> source-only eval -> UNLOCK -> eval -> table).
# Extra arguments go to tools/run_synthetic_benchmark.py (e.g. --quick, --seeds 0 1 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/setup_env.sh
exec python tools/run_synthetic_benchmark.py "$@"
