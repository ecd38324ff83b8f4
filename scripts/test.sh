#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs qrisk with its test extras,
# starts the real services the tests need, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# a CJK font so control-chart PNGs carry their Chinese titles (the tests do not depend on it)
if ! fc-list 2>/dev/null | grep -qiE 'wqy|cjk'; then
  (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends fonts-wqy-microhei >/dev/null 2>&1; }) \
    || echo "test.sh: could not install fonts-wqy-microhei; chart titles will show boxes for Chinese" >&2
fi
# real ClickHouse and Kafka on loopback; the tests fail (never skip) without them
bash scripts/services.sh up
eval "$(bash scripts/services.sh env)"
# two workers, a test file each at a time (--dist loadfile: a module's fixtures and its order stay as written); much of
# the suite waits on a broker restarting or a server starting.  QRISK_TEST_WORKERS=0 runs it in one process.
workers="${QRISK_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
  exec python3 -m pytest -q "$@"
fi
exec python3 -m pytest -q -n "$workers" --dist loadfile "$@"
