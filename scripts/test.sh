#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs qrisk with its test extras,
# starts the real services the tests need, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
if [ -x scripts/services.sh ]; then
  scripts/services.sh up
fi
exec python3 -m pytest -q "$@"
