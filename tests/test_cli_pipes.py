"""A command's output piped into `head` (`qrisk demo | head -3`): the reader goes away, and the command
ends quietly with 141 — what a shell reports for a writer SIGPIPE ended, so `set -o pipefail` sees the
output cut short as it would for cat — rather than with a BrokenPipeError traceback."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run ``qrisk ARGS`` with stdout a pipe nobody reads any more (its read end closed first)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "qrisk", *args], cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    from ingest.files import write_jsonl
    from qrisk.demo import CountyGenerator

    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    write_jsonl(CountyGenerator(seed=7).generate(), path)
    return path


def test_a_long_output_into_a_closed_pipe_ends_quietly():
    out = closed_pipe("demo", "--seed", "7")
    assert (out.returncode, out.stderr) == (141, "")


@pytest.mark.parametrize("command", [["risk"], ["campaign"]])
def test_a_table_into_a_closed_pipe_ends_quietly(events, command):
    out = closed_pipe(*command, "--events", str(events))
    assert (out.returncode, out.stderr) == (141, "")


def test_a_short_output_left_in_the_buffer_ends_quietly_too(tmp_path):
    """A few lines stay in Python's buffer until the interpreter's exit, where a closed pipe was an
    "Exception ignored … BrokenPipeError" and exit 120: main flushes them itself."""
    from qrisk.auth import KeyStore

    KeyStore(tmp_path / "keys.json").create("admin", "ops")
    out = closed_pipe("keys", "list", "--data-dir", str(tmp_path))
    assert (out.returncode, out.stderr) == (141, "")


def test_the_kept_demo_data_gets_its_key_when_stdout_is_cut_short(tmp_path):
    kept = tmp_path / "kept"
    out = closed_pipe("demo", "--seed", "7", "--data-dir", str(kept))
    assert out.returncode == 141 and "Traceback" not in out.stderr
    assert re.search(r"^qrisk:   Authorization: Bearer qrisk_\S+$", out.stderr, re.M) and (kept / "keys.json").exists()
