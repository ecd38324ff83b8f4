"""Threads that the operating system knows by their name.

CPython 3.11 names a thread for Python only: `top -H`, `ps -L` and /proc/PID/task/TID/comm show every
thread of `qrisk run` as "python", so an operator (or bench/bench_embedded.py --threads) cannot tell
the group commit that folds from the sink that writes derived rows or chdb's own pools.  A
``NamedThread`` also sets its OS-level name (Linux allows 15 bytes) when it starts.
"""
from __future__ import annotations

import functools
import sys
import threading
from typing import Any

_PR_SET_NAME = 15  # linux/prctl.h


@functools.cache
def _prctl() -> Any:
    # (imported when a thread starts, not with the module: every CLI command imports qrisk.auth)
    import ctypes

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).prctl  # libc's, linked into the interpreter
    except (OSError, AttributeError):
        return None


def set_os_thread_name(name: str) -> bool:
    """Name the calling thread for the operating system (the first 15 bytes of ``name``); False where it cannot."""
    prctl = _prctl()
    if prctl is None:
        return False
    import ctypes

    return prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode("utf-8")[:15]), 0, 0, 0) == 0


class NamedThread(threading.Thread):
    """A ``threading.Thread`` whose name the operating system shows too, without the ``qrisk-`` every
    thread of the process has (15 bytes: ``qrisk-group-commit`` is ``group-commit``)."""

    def run(self) -> None:
        set_os_thread_name(self.name.removeprefix("qrisk-"))
        super().run()
