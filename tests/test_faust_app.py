"""The worker's Faust consumer commits through repeated acknowledgements (qrisk.faust_app).

After a rebalance the same offset can be acknowledged twice (see the module's docstring); plain
faust-streaming 0.15.3 then commits one offset per commit interval, which made the kill -9
scale-out test take minutes to commit a taken-over partition it had folded in seconds.
"""
from __future__ import annotations

import faust
from faust.types import TP

from qrisk.faust_app import App, Consumer
from qrisk.topics import KafkaSettings
from qrisk.worker import create_app

# what the scale-out test's survivor held for a taken-over ingress partition: each offset twice
TWICE = [208, 209, 209, 210, 210, 211, 211, 212, 212]


def _consumer(app: faust.App, committed: int, acked: list[int]):
    consumer = app.consumer
    tp = TP("t.ingress.lab", 0)
    consumer._committed_offset[tp] = committed
    consumer._acked[tp].extend(acked)
    consumer._acked_index[tp].update(acked)
    return consumer, tp


def test_offsets_acknowledged_twice_are_committed_in_one_go() -> None:
    consumer, tp = _consumer(App("qrisk-test-dedupe", broker="kafka://127.0.0.1:1", store="memory://"), 208, TWICE)
    assert isinstance(consumer, Consumer)
    assert consumer._new_offset(tp) == 213
    assert consumer._acked[tp] == []


def test_a_gap_still_holds_the_commit_back() -> None:
    # 210 not yet acknowledged: the commit stops before it
    consumer, tp = _consumer(App("qrisk-test-gap", broker="kafka://127.0.0.1:1", store="memory://"), 208, [208, 209, 209, 211, 211, 212])
    assert consumer._new_offset(tp) == 210
    assert consumer._acked[tp] == [211, 212]


def test_plain_faust_commits_one_offset_at_a_time() -> None:
    # why the fix exists; if an upgrade makes this fail, faust has fixed it itself
    consumer, tp = _consumer(faust.App("qrisk-test-plain", broker="kafka://127.0.0.1:1", store="memory://"), 208, TWICE)
    assert not isinstance(consumer, Consumer)
    assert consumer._new_offset(tp) == 210


def test_the_worker_uses_the_fixed_consumer() -> None:
    app = create_app(KafkaSettings(kafka_bootstrap="127.0.0.1:1", worker_web_port=0))
    assert isinstance(app.consumer, Consumer)
