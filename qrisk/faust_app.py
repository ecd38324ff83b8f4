"""The worker's Faust app: faust-streaming 0.15.3 with one fix to how its consumer commits.

Faust commits the end of the first run of consecutive acknowledged offsets
(``Consumer._new_offset``), and a run stops at a repeated number.  After a rebalance the same
offset is acknowledged twice: the consumer hands a stream the messages it fetches while
``perform_seek`` waits for the committed offsets, then seeks back and hands them over again;
and a partition kept through the rebalance is re-read from its committed offset though much of
it was already handed over.  Both copies are processed (harmless here: the fold skips an event
id it has seen) and both acknowledged, so with every offset listed twice the commit advanced one
offset per commit interval.  The scale-out test saw exactly that: the survivor folded a
taken-over partition in seconds, then took a minute or more (once over two) to commit it, its
group lag falling by one a second.

The commit below reads the acknowledged offsets as a set.  Committing past an offset still needs
every offset before it acknowledged at least once, which is what at-least-once asks.
"""
from __future__ import annotations

from typing import Any, Optional

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP


class Consumer(aiokafka_driver.Consumer):
    def _new_offset(self, tp: TP) -> Optional[int]:
        acked = self._acked[tp]
        if len(acked) > 1:
            acked[:] = sorted(set(acked))
        return super()._new_offset(tp)


class Transport(aiokafka_driver.Transport):
    Consumer = Consumer


class App(faust.App):
    """``faust.App`` whose consumer is the one above (faust-streaming is pinned: see pyproject)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
