#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs qrisk with its test extras,
# starts the real services the tests need, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# real ClickHouse and Kafka on loopback; the tests fail (never skip) without them
bash scripts/services.sh up
eval "$(bash scripts/services.sh env)"
exec python3 -m pytest -q "$@"
