#!/usr/bin/env bash
# Lint (ruff: pyflakes, pycodestyle, import order, 100 columns; settings in ruff.toml).
#   bash tools/lint.sh            # check;   bash tools/lint.sh --fix   to fix what ruff can
set -euo pipefail
unset CDPATH  # a relative cd would print its CDPATH match into $(...)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${GENVIEW_VENV:-}" in  # a relative one is the caller's, as bootstrap_env.sh reads it
  ''|/*) ;;
  *) export GENVIEW_VENV="$PWD/$GENVIEW_VENV" ;;
esac
bash "$ROOT/tools/bootstrap_env.sh" >/dev/null
cd "$ROOT"
exec "${GENVIEW_VENV:-$ROOT/.venv}/bin/ruff" check "$@" .
