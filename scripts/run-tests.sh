#!/usr/bin/env bash
# Every test (`make test`), in two lanes at once: the afternoon under a real scheduler mostly waits on its shortened
# clock (about 20 minutes), so it runs beside the rest of the suite instead of after it. The machine has 2 cores.
# Its output follows the suite's (also in artefacts/afternoon-pytest.log); the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
AFTERNOON=tests/integration/test_same_day_scheduler.py
mkdir -p artefacts
.venv/bin/pytest "$AFTERNOON" "$@" > artefacts/afternoon-pytest.log 2>&1 &
afternoon=$!
.venv/bin/pytest --ignore="$AFTERNOON" "$@"
suite=$?
wait "$afternoon"
afternoon_status=$?
echo "──── $AFTERNOON, run beside the suite (artefacts/afternoon-pytest.log) ────"
cat artefacts/afternoon-pytest.log
if [ "$suite" != 0 ]; then exit "$suite"; fi
exit "$afternoon_status"
