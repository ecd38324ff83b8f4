"""After an upgrade the derived tables hold what this code derives, not what the old code did.

A data directory is written by "the old code": the fold version one below this one, and a fold that
drops the fluctuation signals (so the old tables have fewer effects, alerts, alert steps and
notifications than this code makes).  Its notifications are sent and recorded, but for one still
waiting (its receiver was down) and one the old code made that this one does not.  Opened by this
code, the directory is rebuilt from the log: every derived table equals a clean replay of the same
log, nothing already sent goes out again, the notification that waited goes out, the one no longer
made is recorded as not sent, and new notifications about steps older than ``live_within_hours``
are recorded as not sent rather than sent months late.  A rebuild cut short is done again by the next
start.  Also: a copy whose checkpoint is past its log's end (a hot copy), a log with seqs missing,
another policy (a warning, no rebuild), ``qrisk rebuild`` and the replay's progress lines.
"""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from services import clickhouse_url, store  # noqa: F401 - fixtures

import qrisk.pipeline as pipeline_module
from alerts.notification import Notification
from alerts.outbox import Dispatcher
from processors.step import FOLD_VERSION, Rules, step
from qrisk.demo import CountyGenerator
from qrisk.pipeline import DERIVED_TABLES, Pipeline
from qrisk.store import ChdbStore, migrate
from schemas.policy import Policy
from schemas.standards import load_catalogue
from tests.test_pipeline_derived import dump

LIVE_DAYS = 45
POLICY = {"alerts": {"receivers": [{"name": "desk", "kind": "webhook", "url": "http://127.0.0.1:9/desk"}],
                     "routes": [{"receivers": ["desk"]}], "live_within_hours": 24 * LIVE_DAYS}}


@pytest.fixture(scope="module")
def events():
    return [*CountyGenerator(seed=11, months=6, county="A-").generate(), *CountyGenerator(seed=12, months=6, county="B-").generate()]


@pytest.fixture(scope="module")
def rules():
    return Rules(catalogue=load_catalogue(), policy=Policy.model_validate(POLICY))


@pytest.fixture(scope="module")
def times(events):
    """When the old code received the events (the last months' are live), and when the upgrade came:
    a month later, so that a notification of the first half of the live window is history by then."""
    written = max(e.occurred_at for e in events) + dt.timedelta(hours=1)
    return written, written + dt.timedelta(days=30)


def old_step(state, event, rules):
    """The old fold: no fluctuation signals, nor warnings of them or of a worsened grade."""
    state, effects = step(state, event, rules)
    return state, [e for e in effects if e.kind != "fluctuation.signal"
                   and not (e.kind == "warning.raised" and e.data.get("rule") in ("fluctuation.signal", "risk.grade_worsened"))]


def write_old(path, rules, events, clock, monkeypatch) -> None:
    monkeypatch.setattr(pipeline_module, "FOLD_VERSION", FOLD_VERSION - 1)
    monkeypatch.setattr(pipeline_module, "step", old_step)
    old = Pipeline(ChdbStore(path), rules, clock=lambda: clock, snapshot_every=dt.timedelta(days=1))
    old.recover()
    for i in range(0, len(events), 300):
        old.submit(events[i:i + 300])
    old.close()
    monkeypatch.undo()


def clean_replay(src, dst, rules, clock) -> dict:
    """A data directory holding only ``src``'s log, started: what a clean replay derives."""
    source = ChdbStore(src)
    log = source.query("SELECT * FROM event_log")
    source.close()
    target = ChdbStore(dst)
    migrate(target)
    target.insert("event_log", log)
    fresh = Pipeline(target, rules, clock=lambda: clock)
    fresh.recover()
    out = derived(target)
    fresh.close()
    return out


def derived(store) -> dict:
    """The derived tables as a reader sees them (every row of each, alerts at their newest version)."""
    out = dump(store)
    out["outbox"] = store.query("SELECT delivery_id, alert_id, created_at FROM outbox FINAL ORDER BY delivery_id")
    out["alerts"] = store.query("SELECT alert_id, argMax(evidence, version) AS view, max(version) AS v FROM alerts "
                                "GROUP BY alert_id ORDER BY alert_id")
    out["alert_events"] = store.query("SELECT * FROM alert_events FINAL ORDER BY alert_id, version")
    return out


class Receiver:
    """A send function: records each call; ``down`` names the ids it answers 503 for."""

    def __init__(self, down=()):
        self.calls: list[str] = []
        self.down = set(down)

    def __call__(self, receiver, note, smtp, timeout):
        self.calls.append(note.delivery_id)
        ok = note.delivery_id not in self.down

        class Result:
            pass

        r = Result()
        r.ok, r.code, r.error, r.retry = ok, 200 if ok else 503, "" if ok else "down", True
        return r


def drain(store, rules, clock, receiver) -> None:
    d = Dispatcher(store, rules.policy.alerts, clock=lambda: clock, send=receiver, base_delay=3600)
    for _ in range(20):
        if not d.run_once():
            return
    raise AssertionError("the outbox does not drain")


class Crash(Exception):
    pass


def test_an_upgraded_directory_is_rebuilt_to_a_clean_replay_and_sends_nothing_twice(tmp_path, rules, events, times, monkeypatch, capsys):
    written, upgraded = times
    old_dir, clean_dir = tmp_path / "old", tmp_path / "clean"
    write_old(old_dir, rules, events, written, monkeypatch)
    expected = clean_replay(old_dir, clean_dir, rules, upgraded)

    # the old code's notifications go out, but for one whose receiver is down; and two more wait that this
    # code does not make: one of an alert of the old fold only, one for a receiver the policy no longer has
    store = ChdbStore(old_dir)
    before = derived(store)
    assert before["effects"] != expected["effects"] and len(before["alerts"]) < len(expected["alerts"])
    old_ids = {r["delivery_id"] for r in before["outbox"]}
    both = sorted(old_ids & {r["delivery_id"] for r in expected["outbox"]})
    waiting = both[len(both) // 2]
    first = Receiver(down=[waiting])
    drain(store, rules, written, first)
    assert set(first.calls) == old_ids and len(old_ids) >= 5
    ghosts = [Notification(delivery_id=f"ghost-000{i}", alert_id="AL-00000000000ghost", enterprise_id="A-W01", receiver=receiver,
                           channel="webhook", reason="opened", subject_zh="主题", text_zh="正文") for i, receiver in ((1, "desk"), (2, "retired"))]
    store.insert("outbox", [{"delivery_id": n.delivery_id, "alert_id": n.alert_id, "enterprise_id": n.enterprise_id, "receiver": n.receiver,
                             "channel": n.channel, "reason": n.reason, "created_at": written, "created_ms": 0, "body": n.to_json()}
                            for n in ghosts])
    sent_before = store.query("SELECT delivery_id, attempt, status, at FROM deliveries ORDER BY delivery_id, attempt")
    store.close()

    # the upgrade: the first start is killed half-way through its rebuild …
    def killed(n, seen=[]):  # noqa: B006 - counts the batches across calls
        seen.append(n)
        if len(seen) == 3:
            raise Crash
    store = ChdbStore(old_dir)
    cut = Pipeline(store, rules, clock=lambda: upgraded)
    with pytest.raises(Crash):
        cut.recover(killed, batch=200)
    assert store.query("SELECT state FROM derivations ORDER BY ver DESC LIMIT 1") == [{"state": "rebuilding"}]
    store.close()
    err = capsys.readouterr().err
    assert f"折叠版本由 {FOLD_VERSION - 1} 变为 {FOLD_VERSION}" in err and f"fold version {FOLD_VERSION - 1} derived them" in err

    # … and the next does it again, from the start
    store = ChdbStore(old_dir)
    again = Pipeline(store, rules, clock=lambda: upgraded)
    again.recover()
    rebuilt = again.recovery["rebuilt"]
    assert rebuilt["why"] == "the last rebuild did not finish" and again.recovery["rederived"] is None
    # (the notification for a receiver the policy no longer names waits on: the dispatcher settles it)
    got = derived(store)
    assert [r for r in got["outbox"] if r["delivery_id"] == "ghost-0002"]
    got["outbox"] = [r for r in got["outbox"] if r["delivery_id"] != "ghost-0002"]
    assert got == expected
    assert again.derived_seq == again.seq == len(events) and again.events == len(events)
    marker = store.query("SELECT state, fold_version, catalogue FROM derivations ORDER BY ver DESC LIMIT 1")
    assert marker == [{"state": "complete", "fold_version": FOLD_VERSION, "catalogue": rules.catalogue.digest}]

    # deliveries kept; what goes out now: the one that waited, and new notifications of recent steps only
    assert store.query("SELECT delivery_id, attempt, status, at FROM deliveries WHERE status = 'sent' OR error = 'down' "
                       "ORDER BY delivery_id, attempt") == sent_before
    cutoff = (upgraded - dt.timedelta(days=LIVE_DAYS)).strftime("%Y-%m-%d %H:%M:%S")
    created = {r["delivery_id"]: r["created_at"] for r in expected["outbox"]}
    later = Receiver()
    drain(store, rules, upgraded, later)
    assert waiting in later.calls and not set(later.calls) & (old_ids - {waiting}), "nothing sent before goes out again"
    fresh = set(later.calls) - {waiting}
    assert fresh and all(created[d] >= cutoff for d in fresh)
    unsent = {r["delivery_id"]: r["error"] for r in store.query("SELECT delivery_id, error FROM deliveries WHERE status = 'failed'")}
    history = {d for d in created if d not in old_ids and created[d] < cutoff}
    assert history and {d for d, e in unsent.items() if "属历史数据，未发送" in e} == history
    assert "当前版本不再产生此通知" in unsent["ghost-0001"] and "ghost-0001" not in later.calls
    assert "receiver no longer configured" in unsent["ghost-0002"]
    assert rebuilt["withheld"] == len(history) and rebuilt["withdrawn"] == 1 and rebuilt["kept"] == 1
    assert rebuilt["released"] == len(later.calls) + 1
    again.close()

    # the start-up lines say why and how long, and what became of the notifications
    from qrisk.cli import _say_recovered

    _say_recovered(again)
    line = [x for x in capsys.readouterr().err.splitlines() if "rebuilt the derived tables" in x]
    assert len(line) == 1 and "已从事件日志重建派生表（上次重建未完成）" in line[0]
    assert (f"{len(later.calls) + 1} notifications wait in the outbox, {len(history)} about past steps and 1 no longer made are "
            "recorded as not sent") in line[0]


def test_a_copy_whose_checkpoint_is_past_its_logs_end_is_rebuilt(tmp_path, rules, events, times, capsys):
    """A data directory copied while qrisk ran: the derived tables (and the checkpoint) of events its log
    does not have.  Left alone, the next events would take those seqs and a crash would not re-derive
    them; rebuilt, the tables are a clean replay of the log there is, and the checkpoint is its end."""
    written, _ = times
    whole = ChdbStore(tmp_path / "whole")
    running = Pipeline(whole, rules, clock=lambda: written, snapshot_every=dt.timedelta(days=1))
    running.recover()
    running.submit(events)
    running.write_snapshots()
    tables = {t: whole.query(f"SELECT * FROM {t}") for t in (*DERIVED_TABLES, "derivations", "deliveries")}
    log = whole.query("SELECT * FROM event_log WHERE seq <= %(end)s", {"end": len(events) - 17})  # the log was copied first
    whole.close()
    copy = ChdbStore(tmp_path / "copy")
    migrate(copy)
    copy.insert("event_log", log)
    for table, rows in tables.items():
        if rows:
            copy.insert(table, rows)
    copy.close()
    expected = clean_replay(tmp_path / "copy", tmp_path / "clean", rules, written)
    copy = ChdbStore(tmp_path / "copy")
    opened = Pipeline(copy, rules, clock=lambda: written)
    opened.recover()
    assert opened.recovery["rebuilt"]["why"].startswith(f"the checkpoint {len(events)} is past the log's end {len(events) - 17}")
    assert derived(copy) == expected
    assert copy.query("SELECT max(seq) AS seq FROM checkpoints")[0]["seq"] == opened.seq == opened.derived_seq == len(events) - 17
    # the next events take the seqs the old checkpoint covered: their rows are written and checkpointed
    end = len(events) - 17
    opened.submit(events[end:end + 3])
    assert opened.seq == opened.derived_seq == end + 3
    assert copy.query("SELECT max(seq) AS seq FROM checkpoints")[0]["seq"] == end + 3
    assert copy.query("SELECT max(seq) AS seq FROM effects")[0]["seq"] == end + 3, "none of the copy's rows of events it lacks"
    assert f"检查点 {len(events)} 超过日志末尾 {len(events) - 17}" in capsys.readouterr().err
    opened.close()


def test_missing_seqs_are_said_and_the_real_count_is_kept(tmp_path, rules, events, times, capsys):
    written, _ = times
    store = ChdbStore(tmp_path / "d")
    p = Pipeline(store, rules, clock=lambda: written, snapshot_every=dt.timedelta(days=1))
    p.recover()
    p.submit(events)
    p.close()
    store = ChdbStore(tmp_path / "d")
    store.command("SET mutations_sync = 2")
    store.command("ALTER TABLE event_log DELETE WHERE seq BETWEEN 100 AND 149 OR seq <= 3")
    again = Pipeline(store, rules, clock=lambda: written)
    again.recover()
    r = again.recovery
    assert r["gaps"] == [(1, 3), (100, 149)] and r["missing"] == 53 and r["rebuilt"] is None
    assert again.events == len(events) - 53 and again.seq == len(events)
    again.submit(events[:0])
    from qrisk.cli import _say_recovered

    _say_recovered(again)
    err = capsys.readouterr().err
    assert f"事件日志有 {len(events) - 53:,} 个事件，最大序号却是 {len(events):,}，缺 53 个序号（seq 1–3、100–149）" in err
    assert "a failed write leaves such a gap, harmlessly; otherwise part of the log was deleted" in err
    assert len([x for x in err.splitlines() if "warning: the event log holds" in x]) == 1
    again.close()


def test_another_policy_is_a_warning_said_once_and_another_catalogue_a_rebuild(tmp_path, rules, events, times):
    written, _ = times
    store = ChdbStore(tmp_path / "d")
    p = Pipeline(store, rules, clock=lambda: written)
    p.recover()
    p.submit(events[:200])
    p.close()
    quieter = Rules(catalogue=rules.catalogue, policy=Policy.model_validate({**POLICY, "alerts": {**POLICY["alerts"], "repeat_hours": 48}}))
    seen = []
    for r in (quieter, quieter, rules.__class__(catalogue=rules.catalogue.model_copy(update={"digest": "0" * 64}), policy=quieter.policy)):
        store = ChdbStore(tmp_path / "d")
        p = Pipeline(store, r, clock=lambda: written)
        p.recover()
        seen.append((p.recovery["policy_changed"], (p.recovery["rebuilt"] or {}).get("why")))
        p.close()
    assert seen == [(True, None), (False, None),
                    (False, f"the standards catalogue changed ({rules.catalogue.digest[:12]} -> {'0' * 12})")]


def test_a_rebuild_on_either_backend_equals_a_clean_replay(store, tmp_path, rules, events, times):  # noqa: F811
    """TRUNCATE and the marker on chdb and on the oldest server the tests start (18.16)."""
    written, _ = times
    p = Pipeline(store, rules, clock=lambda: written, snapshot_every=dt.timedelta(days=1))
    p.recover()
    p.submit(events[:400])
    p.write_snapshots()
    expected = dump(store)  # (derived as the events came: what a clean replay derives, the tests above show)
    # the old code's rows, and its record: one process holds one chdb directory, so the same store plays both
    store.insert("effects", [{"seq": 1, "idx": 99, "kind": "stale", "enterprise_id": "A-W01", "event_id": "x", "occurred_at": written, "data": "{}"}])
    store.insert("derivations", [{"name": "derived", "ver": 2 ** 62, "state": "complete", "fold_version": FOLD_VERSION - 1,
                                  "catalogue": rules.catalogue.digest, "policy": "", "log_seq": 400, "written_at": written, "pending": ""}])
    again = Pipeline(store, rules, clock=lambda: written)
    again.recover()
    assert again.recovery["rebuilt"]["why"] == f"fold version {FOLD_VERSION - 1} derived them, this is {FOLD_VERSION}"
    assert dump(store) == expected


# ---------------------------------------------------------------- qrisk rebuild


def test_qrisk_rebuild_refuses_a_held_directory_and_rebuilds_a_stopped_one(tmp_path, events, capsys):
    from qrisk.cli import main
    from tests.conftest import Server

    data = tmp_path / "data"
    srv = Server(data).start()
    try:
        docs = [json.loads(e.model_dump_json(exclude_unset=True)) for e in events[:300]]
        assert srv.post("/v1/events", json=docs[:150], timeout=60).status_code == 200
        assert srv.post("/v1/events", json=docs[150:], timeout=60).status_code == 200
        assert main(["rebuild", "--data-dir", str(data)]) == 2
        err = capsys.readouterr().err
        assert "正被 qrisk run 使用：先停止服务" in err and "is held by `qrisk run`: stop the service first" in err
    finally:
        srv.stop()
    store = ChdbStore(data)
    before = dump(store)
    store.insert("effects", [{"seq": 1, "idx": 99, "kind": "stale", "enterprise_id": "x", "event_id": "x",
                              "occurred_at": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), "data": "{}"}])
    store.close()
    assert main(["rebuild", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err
    assert "asked for (qrisk rebuild)" in err and "rebuilt the derived tables of" in err and "300 events" in err
    store = ChdbStore(data)
    assert dump(store) == before  # (the stale row is gone)
    store.close()
    assert main(["rebuild", "--data-dir", str(tmp_path / "no-such")]) == 2
    assert "no such data directory" in capsys.readouterr().err


def test_qrisk_rebuild_does_not_empty_a_database_whose_log_is_elsewhere(tmp_path, capsys):
    from qrisk.cli import main

    store = ChdbStore(tmp_path / "d")
    migrate(store)
    store.insert("alerts", [{"alert_id": "AL-1", "enterprise_id": "E", "version": 1}])
    store.close()
    assert main(["rebuild", "--data-dir", str(tmp_path / "d")]) == 2
    assert "事件日志为空而派生表有数据" in capsys.readouterr().err
    store = ChdbStore(tmp_path / "d")
    assert store.query("SELECT count() AS n FROM alerts")[0]["n"] == 1
    store.close()


# ---------------------------------------------------------------- progress


def test_replay_progress_says_how_far_of_how_many_and_how_long_is_left():
    from qrisk.runtime import ReplayProgress

    now = [100.0]
    out = io.StringIO()
    progress = ReplayProgress("replay", terminal=False, clock=lambda: now[0], stream=out)
    progress.start(21_685)
    for t, n in ((0.5, 500), (2.1, 1000), (5.0, 2000), (12.2, 5000), (14.0, 5000)):
        now[0] = 100.0 + t
        progress(n)
    now[0] = 130.0
    progress.close()
    lines = out.getvalue().splitlines()
    # the first line within a couple of seconds, then every 10 s, and one at the end
    assert lines == [
        "qrisk: 重放 1,500/21,685 个事件（714/秒，约剩 28 秒） / replay: 1,500 of 21,685 events (714/s, about 28 s left)",
        "qrisk: 重放 8,500/21,685 个事件（697/秒，约剩 19 秒） / replay: 8,500 of 21,685 events (697/s, about 19 s left)",
        "qrisk: 重放 13,500/21,685 个事件（450/秒），完成 / replay: 13,500 of 21,685 events (450/s), done",
    ]


def test_a_rebuild_sends_a_closing_or_a_hand_over_only_of_the_last_day(rules):
    """(The round's diff review) an upgrade that first makes 预警自动关闭 and 预警移交 notices rebuilds, and derives them
    for every closing and move of the last 30 days (alerts.live_within_hours): a three-week-old closing read as news.
    A notice of a change of standing is news for a day (alerts.lifecycle.STATUS_NOTICES); an opening stays news for
    the policy's window."""
    from qrisk.pipeline import ALERT_STEP_COLUMNS, Pipeline, _Rebuild

    now = dt.datetime(2026, 8, 10, 12, tzinfo=dt.timezone.utc)
    p = Pipeline.__new__(Pipeline)  # (the decision alone: no store)
    p.rules, p.clock = rules, lambda: now
    epoch = int(now.timestamp())
    p._rebuild = _Rebuild(cutoff=epoch - 3600 * 720, status_cutoff=epoch - 3600 * 24, final=set(), waiting={})

    def step(delivery_id, reason, hours_ago):
        row = dict.fromkeys(ALERT_STEP_COLUMNS, "")
        row.update(alert_id="AL-1", enterprise_id="E-1", at=epoch - 3600 * hours_ago, delivery_id=[delivery_id], receiver=["desk"],
                   channel=["webhook"], reason=[reason])
        return tuple(row[c] for c in ALERT_STEP_COLUMNS)

    withheld = p._rebuild_deliveries([step("opened-3d", "opened", 72), step("closed-3d", "closed_by_system", 72),
                                      step("moved-3d", "transferred", 72), step("closed-2h", "closed_by_system", 2),
                                      step("opened-40d", "opened", 24 * 40)])
    assert sorted(r["delivery_id"] for r in withheld) == ["closed-3d", "moved-3d", "opened-40d"]
    assert all("属历史数据，未发送" in r["error"] for r in withheld) and p._rebuild.released == 2


@pytest.mark.parametrize("lifted", ["removed", "ended now"])
def test_a_silence_lifted_early_escalates_at_the_restart_what_the_replay_escalated_unheard(tmp_path, rules, lifted):
    # a 停产整顿 silence until 03-01 held the escalation of a critical failure (deadline 02-11 10:00); on 02-20 it is lifted
    # early and qrisk run restarted: the replay under the new policy escalates on 02-11, among events whose rows are history
    from tests.test_alerts import _SILENCE, failing, policy
    from tests.test_risk import ev, registered

    now = [dt.datetime(2026, 2, 10, 3, 0, tzinfo=dt.timezone.utc)]
    silenced = Rules(catalogue=rules.catalogue, policy=policy(silences=_SILENCE))
    after = [] if lifted == "removed" else [{**_SILENCE[0], "ends": "2026-02-20T02:00:00Z"}]
    p = Pipeline(ChdbStore(tmp_path / "d"), silenced, clock=lambda: now[0])
    p.recover()
    p.submit([registered("2026-01-05T09:00:00+08:00"), failing("2026-02-10T10:00:00+08:00")])
    [alert_id] = [k for k, a in p.alerts.alerts.items() if a.rule == "sampling.unqualified"]
    for day in range(11, 21):
        now[0] = dt.datetime(2026, 2, day, 1, 0, tzinfo=dt.timezone.utc)
        p.submit([ev("clock.tick", f"2026-02-{day:02d}T09:00:00+08:00", enterprise_id="*")])
    assert not p.alerts.alerts[alert_id].escalated
    p.close()

    now[0] = dt.datetime(2026, 2, 20, 2, 0, tzinfo=dt.timezone.utc)
    store = ChdbStore(tmp_path / "d")
    p = Pipeline(store, Rules(catalogue=rules.catalogue, policy=policy(silences=after)), clock=lambda: now[0])
    p.recover()
    # removed: the replay escalated it among past events, so the start escalates it; its end set to now: the replay still
    # held it, and the first tick at or past the new end escalates it
    assert p.recovery["policy_changed"] and (alert_id in p.recovery["escalated_unheard"]) == (lifted == "removed")
    p.submit([ev("clock.tick", "2026-02-20T10:00:00+08:00", enterprise_id="*")])
    rows = store.query("SELECT reason, receiver, created_at FROM outbox WHERE alert_id = %(a)s ORDER BY receiver", {"a": alert_id})
    assert [(r["reason"], r["receiver"]) for r in rows] == [("escalated", "chief"), ("escalated", "desk"), ("escalated", "liangzhu")]
    [step] = store.query("SELECT action, actor, note, at FROM alert_events WHERE alert_id = %(a)s AND action = 'escalated'", {"a": alert_id})
    # (the failure was received at 11:00: its 24 h run from then)
    assert step["note"] == "静默（停产整顿）期间已超过确认期限（应于 2026-02-11 11:00 前确认），" + (
        "静默已在策略文件中提前解除，升级通报" if lifted == "removed" else "静默结束后升级通报") and step["actor"] == "qrisk"
    told = {r["delivery_id"] for r in store.query("SELECT delivery_id FROM outbox WHERE alert_id = %(a)s", {"a": alert_id})}
    book = p.alerts.model_dump_json()
    p.close()
    # told once: the next start (the same policy) escalates nothing again, and a whole replay rebuilds the same book, the
    # restart's escalation with its delivery ids
    p = Pipeline(ChdbStore(tmp_path / "d"), Rules(catalogue=rules.catalogue, policy=policy(silences=after)), clock=lambda: now[0])
    p.recover(rebuild=True)
    assert p.recovery["escalated_unheard"] == [] and p.alerts.model_dump_json() == book
    again = {r["delivery_id"] for r in p.store.query("SELECT delivery_id FROM outbox WHERE alert_id = %(a)s", {"a": alert_id})}
    assert told <= again
    p.close()
