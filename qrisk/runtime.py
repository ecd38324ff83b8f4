"""Wiring shared by the commands: open a data directory, load rules, recover."""
from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from processors.step import Rules
from schemas.policy import Policy
from schemas.standards import load_catalogue
from schemas.working_days import CalendarError, load_calendar

from qrisk.pipeline import Clock, Pipeline, utc_now
from qrisk.settings import Settings, load_policy
from qrisk.store import check_target, open_store, redact
from qrisk.writer_lease import WriterLease


class DataDirError(RuntimeError):
    """A data directory chdb cannot use: not a directory, cannot be made, not writable (one line, Chinese and English)."""


_CHDB_ENTRIES = ("status", "store", "metadata", "data", "tmp")


def check_data_dir(data_dir: str | os.PathLike[str], create: bool = True) -> Path:
    """Make sure chdb can write ``data_dir`` before it opens it: chdb itself answers a read-only
    directory with a page of C++ and Python traceback (``Cannot open file …/status``), and the
    commands that read a store took that for the lock of a running ``qrisk run``.

    Writability is tried, not asked: ``os.access`` says yes to root on a read-only file system's
    neighbours and knows nothing of ACLs; creating a file is what chdb will do.  ``create=False``
    refuses a directory that does not exist (a reader must not make an empty store of a typo)."""
    path = Path(data_dir)
    if path.exists() and not path.is_dir():
        raise DataDirError(f"数据目录 {path} 不是目录 / data directory {path} is not a directory")
    if not path.exists():
        if not create:
            raise DataDirError(f"数据目录 {path} 不存在 / {path}: no such data directory")
        try:
            # the owner's alone, whatever the umask: it holds the event log, dead letters with the bodies
            # senders posted, the audit trail and (by default) the keys file
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"无法创建数据目录 {path}（{exc.strerror}）/ cannot create data directory {path}: {exc.strerror}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".qrisk-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
        # what chdb writes besides new files: its lock file and its folders (made by another user?)
        for name in _CHDB_ENTRIES:
            entry = path / name
            if entry.exists() and not os.access(entry, os.W_OK):
                raise PermissionError(13, "Permission denied", str(entry))
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename and Path(exc.filename).name in _CHDB_ENTRIES else ""
        raise DataDirError(f"数据目录 {path} 不可写（{exc.strerror}{where}）：请检查权限、属主或是否只读挂载 / "
                           f"data directory {path} is not writable: {exc.strerror}{where} "
                           "(check its permissions and owner, and whether its file system is mounted read-only)") from None
    return path


def open_to_others(data_dir: str | os.PathLike[str]) -> str | None:
    """The warning for a data directory others may read or enter (an older install, a Docker volume, one
    made by hand: qrisk makes its own 0700 but leaves an existing one's mode alone), else None.  It holds
    the event log, the bodies senders posted (dead letters), the audit trail and, by default, the keys."""
    path = Path(data_dir)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"警告：数据目录 {path} 的权限为 {mode:04o}，其他用户可读取其中的事件日志、拒收记录（报送原文）、审计记录和密钥文件；"
            f"建议执行 chmod 700 {path} / warning: data directory {path} has mode {mode:04o}: other users may read its event log, "
            f"dead letters (the bodies senders posted), audit trail and keys file; consider chmod 700 {path}")


def open_target(target: str | os.PathLike[str], create: bool = True):
    """``open_store`` with the checks an operator's mistake needs: a URL of another scheme is refused,
    a chdb directory must be writable (and, with ``create=False``, exist)."""
    directory = check_target(target)
    if directory is not None:
        check_data_dir(directory, create=create)
    return open_store(target)


def default_rules(policy_file: Path | None = None, calendar_file: Path | None = None) -> Rules:
    """The packaged catalogue, the policy (``policy_file``, else the built-in one) and the working-day calendar
    (``calendar_file``, else QRISK_CALENDAR_FILE, else the packaged one)."""
    if calendar_file is None:
        from qrisk.settings import Settings  # (here: the worker, the CLI and the API all build their rules here)

        calendar_file = Settings().calendar_file
    try:
        calendar = load_calendar(str(calendar_file) if calendar_file is not None else None)
    except CalendarError as exc:
        from qrisk.settings import PolicyError

        where = calendar_file if calendar_file is not None else "（内置 / packaged）"
        raise PolicyError(f"工作日历文件 {where} 无效（{exc}；见 QRISK_CALENDAR_FILE）/ working-day calendar (QRISK_CALENDAR_FILE) "
                          f"{where}: {exc}") from exc
    return Rules(catalogue=load_catalogue(), policy=load_policy(policy_file), calendar=calendar)


CALENDAR_AHEAD_FLOOR_DAYS = 60
"""The least look-ahead: a rectification deadline or follow-up date set by date also ends on the calendar."""


def calendar_ahead_days(policy: Policy) -> int:
    """How far ahead a start and /healthz look for a year the working-day calendar lacks: as far as the policy's longest
    limit of working days can run from a case begun today — a 投诉's acceptance and mediation (7 + 45), a 举报's check
    and extension (15 + 15), a sample's way to the lab and its report (5 + 20, or a lab's agreed ones) — in calendar
    days (five working days a week, ``n·7/5``) with two weeks for a holiday week on the way.  A fixed 60 days missed a
    投诉 received late October, whose mediation ends in January: its register showed 估算 for a week before anything
    warned.  Every limit counts, enabled or not: warning a little early costs nothing."""
    complaints, turnaround = policy.complaint_deadlines, policy.sampling_turnaround
    labs = [(lab.to_lab_working_days or turnaround.to_lab_working_days) + (lab.report_working_days or turnaround.report_working_days)
            for lab in turnaround.labs.values()]
    longest = max(complaints.complaint.accept_working_days + complaints.complaint.mediate_working_days,
                  complaints.report.check_working_days + complaints.report.extension_working_days,
                  turnaround.to_lab_working_days + turnaround.report_working_days, *labs)
    return max(CALENDAR_AHEAD_FLOOR_DAYS, -(-longest * 7 // 5) + 14)


def calendar_missing_years(rules: Rules, now: dt.datetime) -> list[int]:
    """The years from the bureau's today to ``calendar_ahead_days`` on (87 days with the built-in policy: the next year
    from early October on) that the working-day calendar does not hold: time limits counted in them are estimates
    (估算).  ``now`` is the runtime's clock, never read in the fold."""
    today = rules.local_date(now)
    later = today + dt.timedelta(days=calendar_ahead_days(rules.policy))
    return [year for year in range(today.year, later.year + 1) if year not in rules.calendar.years]


def calendar_warning(rules: Rules, now: dt.datetime) -> str | None:
    """What a start (``qrisk run``, the Kafka worker) says when the calendar lacks a year limits are about to run into."""
    missing = calendar_missing_years(rules, now)
    if not missing:
        return None
    zh, en = "、".join(str(y) for y in missing), ", ".join(str(y) for y in missing)
    return (f"警告：工作日历未收录 {zh} 年（国务院办公厅放假安排通知）：该年工作日按周一至周五（除元旦、劳动节、国庆节法定日期及其补假）估算，"
            f"相关时限标注“估算”。请在 schemas/standards/calendar/working_days.yaml 添加，或设置 QRISK_CALENDAR_FILE。 / warning: the "
            f"working-day calendar lacks {en} (the State Council General Office's holiday notice): its working days are estimated "
            f"as Monday–Friday less 元旦, 劳动节 and 国庆节's fixed dates, and time limits counted in it say 估算 (estimate); add "
            f"it to schemas/standards/calendar/working_days.yaml or set QRISK_CALENDAR_FILE")


GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc(freeze: bool = True) -> None:
    """The fold keeps a large, long-lived object graph (every credit file): with the
    default thresholds the collector rescans it thousands of times per second under
    load.  Collect young objects less often, and freeze what recovery built."""
    gc.set_threshold(*GC_THRESHOLDS)
    if freeze:
        gc.collect()
        gc.freeze()


def open_embedded(data_dir: Path, rules: Rules, clock: Clock = utc_now, progress: Callable[[int], None] | None = None,
                  clickhouse_url: str | None = None, snapshot_seconds: float | None = None, rebuild: bool = False,
                  create: bool = True) -> Pipeline:
    """The pipeline on chdb in ``data_dir``, or on a ClickHouse server when a URL is given.

    On a server only one pipeline may write a database: it hands out ``seq`` itself
    (chdb's directory lock enforces the same for a data directory).  ``rebuild``: write the
    derived tables again from the log (``qrisk rebuild``; a start does it by itself when they
    were derived by other code, see ``Pipeline.recover``)."""
    settings = Settings()
    store = open_target(clickhouse_url or data_dir, create=create)
    if snapshot_seconds is None:
        snapshot_seconds = settings.snapshot_seconds
    pipeline = Pipeline(store, rules, clock, snapshot_every=dt.timedelta(seconds=snapshot_seconds))
    if not getattr(store, "exclusive", False):
        lease = WriterLease(store, settings.writer_lease_seconds)
        try:
            lease.acquire(f"ClickHouse database {redact(clickhouse_url)}" if clickhouse_url else "this database")
        except BaseException:
            store.close()
            raise
        pipeline.writer_lease = lease
    tune_gc(freeze=False)
    try:
        pipeline.recover(progress, rebuild=rebuild)
    except BaseException:
        # (a rebuild cut short is on record as one: the next start does it again)
        try:
            if pipeline.writer_lease is not None:
                pipeline.writer_lease.release()
            store.close()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    tune_gc()
    return pipeline


class ReplayProgress:
    """Progress of a replay (or a rebuild) that knows its total: ``start(total)``, then the size of
    each batch.  On a terminal a tqdm bar (with its rate and time left); in a log (systemd, docker,
    nohup), where a bar prints nothing, a line after ``first`` seconds — soon enough that a start which
    seems to hang is seen to be working — then every ``every`` seconds, with the total and the time
    left, and one at the end if any was printed."""

    def __init__(self, what: str, what_zh: str = "重放", every: float = 10.0, first: float = 1.5, terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, stream: object = None):
        self.what, self.what_zh, self.every, self.first = what, what_zh, every, first
        self.total: int | None = None
        self.done = self.lines = 0
        self._clock = clock
        self._stream = stream
        self.started = self.next_at = clock()
        self.next_at += first
        self.bar = None
        # what the start is doing besides replaying (reading a snapshot, finishing): (phase, Chinese, English)
        self.stage: tuple[str, str, str] | None = None
        self._terminal = sys.stderr.isatty() if terminal is None else terminal

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stderr

    def note(self, phase: str, zh: str, en: str) -> None:
        """Say what the start does that is not replaying events (``/healthz`` shows it while it lasts)."""
        self.stage = (phase, zh, en)

    def start(self, total: int) -> None:
        self.stage = None
        self.total = total
        self.started = self._clock()
        self.next_at = self.started + self.first
        if self._terminal and total:
            from tqdm import tqdm

            # (past the timestamps of a service's stderr: a bar redraws its line with \r)
            self.bar = tqdm(total=total, desc=self.what, unit="ev", file=getattr(self.stream, "raw", self.stream), leave=False)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self._clock()
        if now >= self.next_at and not self._terminal:
            self.next_at = now + self.every
            self._line(now)

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        of, of_zh, left, left_zh = "", "", "", ""
        if self.total:
            of, of_zh = f" of {self.total:,}", f"/{self.total:,}"
            if not done and rate > 0:
                seconds = max(self.total - self.done, 0) / rate
                left, left_zh = f", about {_duration(seconds)} left", f"，约剩 {_duration(seconds, zh=True)}"
        end, end_zh = (", done", "，完成") if done else ("", "")
        print(f"qrisk: {self.what_zh} {self.done:,}{of_zh} 个事件（{rate:,.0f}/秒{left_zh}）{end_zh} / "
              f"{self.what}: {self.done:,}{of} events ({rate:,.0f}/s{left}){end}", file=self.stream, flush=True)
        self.lines += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()  # (before the summary line: it must not share the bar's line)
            self.bar = None
        elif self.lines:  # a long run said how far it got: say it ended
            self._line(self._clock(), done=True)


def _duration(seconds: float, zh: bool = False) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} 秒" if zh else f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} 分钟" if zh else f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} 小时" if zh else f"{seconds / 3600:.1f} h"
