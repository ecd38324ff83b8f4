"""Threads the operating system knows by name (qrisk.threads): `top -H` tells the group commit
from the derived-rows sink and from chdb's pools."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from qrisk.threads import NamedThread
from tests.conftest import Server

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names are read from /proc (Linux)")


def os_name(pid: int | str, tid: int | str) -> str:
    return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()


def test_a_named_thread_carries_its_name_without_the_prefix_and_within_15_bytes():
    names = {}
    done = threading.Event()

    def look(key):
        names[key] = os_name("self", threading.get_native_id())
        done.wait(5)

    threads = [NamedThread(target=look, args=(k,), name=n, daemon=True)
               for k, n in (("short", "qrisk-audit"), ("long", "qrisk-writer-sampling_items"), ("plain", "other"))]
    for t in threads:
        t.start()
    done.set()
    for t in threads:
        t.join(5)
    assert names == {"short": "audit", "long": "writer-sampling", "plain": "other"}


def test_the_embedded_servers_threads_are_named(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        pid = server.proc.pid
        names = {os_name(pid, task.name) for task in Path(f"/proc/{pid}/task").iterdir()}
    finally:
        server.stop()
    assert {"group-commit", "derived-sink", "audit"} <= names, names  # (outbox: only with receivers)
