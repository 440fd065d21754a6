#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv, installs what is needed
# (again only when pyproject.toml or constraints.txt change), then runs
#   ./run.sh chat [serve options]   the web chat on http://127.0.0.1:7860
#   ./run.sh test [pytest options]  the test suite
#   ./run.sh ARGS...                any `python -m app` command
# Paths given as options are read from the folder you run it in.
set -euo pipefail
repo=$(cd "$(dirname "$0")" && pwd)
venv="$repo/.venv"

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

stamp="$venv/.installed"
wanted=$(cat "$repo/pyproject.toml" "$repo/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing dependencies into .venv ..." >&2
  (
    cd "$repo"
    .venv/bin/python -m pip install -q --upgrade pip
    # The CPU build of torch first, so nothing later pulls a CUDA build.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  )
  echo "$wanted" > "$stamp"
fi

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false GRADIO_ANALYTICS_ENABLED=False
case "${1:-chat}" in
  chat) shift || true; exec "$venv/bin/python" -m app serve "$@" ;;
  test) shift; cd "$repo"; exec "$venv/bin/python" -m pytest "$@" ;;
  *) exec "$venv/bin/python" -m app "$@" ;;
esac
