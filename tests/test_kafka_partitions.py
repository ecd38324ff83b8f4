"""Worker, sink and API refuse to start when the log's real partition count is not
QRISK_KAFKA_PARTITIONS (the API would send an enterprise to one partition, the workers to
another, and split its state in two without a word)."""
from __future__ import annotations

import pytest

from tests.kafka_service import kafka_bootstrap, kafka_env, kafka_prefix, settings_for  # noqa: F401 - fixtures


def test_a_partition_count_other_than_the_log_s_refuses_to_start(kafka_bootstrap, kafka_prefix, tmp_path, capsys):
    from qrisk.kafka_api import open_distributed
    from qrisk.sink import run_sink
    from qrisk.topics import TopicMismatch, check_partitions
    from qrisk.worker import run_worker

    right = settings_for(kafka_env(kafka_bootstrap, kafka_prefix))
    check_partitions(right)  # the log has 4, as declared
    wrong = right.model_copy(update={"kafka_partitions": 2})
    with pytest.raises(TopicMismatch) as caught:
        check_partitions(wrong)
    text = str(caught.value)
    assert "\n" not in text and f"{kafka_prefix}.events" in text and "4 个分区" in text and "has 4 partitions" in text
    assert "QRISK_KAFKA_PARTITIONS=2" in text
    assert run_sink(str(tmp_path / "chdb"), wrong) == 2
    assert run_worker(wrong) == 2
    err = capsys.readouterr().err
    assert err.count("refusing to start") == 2 and "拒绝启动" in err
    with pytest.raises(TopicMismatch, match="refusing to start"):
        open_distributed(wrong, str(tmp_path / "chdb"), None)
    assert not (tmp_path / "chdb").exists()  # nothing was opened
