"""``qrisk worker`` with one fault put in: the restore of one changelog partition gets no record.

Not a product path: ``tests/test_kafka_restore_stall.py`` runs a worker through this to test the
watch that ends such a restore (``qrisk.faust_app.App._watch_restores``).  A CI run saw it happen on
its own: after a rebalance two partitions got no record for two minutes while the other two
restored.  How is not known, so the fault is made the plainest way: once Faust has sought the
partition for its restore, the consumer's read offset is put past anything the partition holds,
and the drain loop drops each of its records as already read.  Only the first restore with records
to read on that partition (``STALL_RESTORE_PARTITION``) is hit.
"""
from __future__ import annotations

import os
import runpy

from faust.tables.recovery import Recovery

PARTITION = int(os.environ["STALL_RESTORE_PARTITION"])
_hit: list = []
_seek_offsets = Recovery._seek_offsets


async def _seek_offsets_stalling(self, consumer, tps, offsets, title):
    await _seek_offsets(self, consumer, tps, offsets, title)
    if title != "active" or _hit:
        return
    for tp in tps:
        at = -1 if offsets[tp] is None else offsets[tp]
        if tp.partition == PARTITION and (self.active_highwaters.get(tp) or -1) > at:
            consumer._read_offset[tp] = 1 << 62
            _hit.append(tp)
            print(f"fault: {tp.topic}/{tp.partition}: its restore from offset {at} gets no record", flush=True)


Recovery._seek_offsets = _seek_offsets_stalling
runpy.run_module("qrisk.cli_kafka", run_name="__main__", alter_sys=True)
