#!/usr/bin/env bash
# One entry point for the quick start: sets up .venv idempotently, then runs a task.
#   ./dev.sh run     the main job
#   ./dev.sh test    the whole test suite
#   ./dev.sh bench   the benchmarks
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
stamp="$venv/.installed"
setup() {
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    # Reinstall only when the pinned requirements or the project metadata change.
    local want
    want=$(cat requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
        echo "$want" > "$stamp"
    fi
}

task=${1:-}
[ $# -gt 0 ] && shift
case "$task" in
    run)   setup; exec "$venv/bin/signalprop" probe "$@" ;;
    test)  setup; exec "$venv/bin/python" -m pytest "$@" ;;
    bench) setup; for b in benchmarks/bench_*.py; do "$venv/bin/python" "$b" "$@"; done ;;
    *)     echo "usage: ./dev.sh run|test|bench [args...]" >&2; exit 2 ;;
esac
