# Sourced by scripts/setup, scripts/test and scripts/demo: where the project's
# Python lives, so all three use the same interpreter.
#   VENV  the active virtual environment ($VIRTUAL_ENV), else .venv at the repo root
#   VPY   its python; PYTHON only picks the interpreter .venv is built from
if [ -n "${VIRTUAL_ENV:-}" ]; then
    VENV="$VIRTUAL_ENV"
else
    VENV="$PWD/.venv"
fi
VPY="$VENV/bin/python"
