"""The working-day calendar as data (``schemas/standards/calendar/working_days.yaml``), and counting on it.

Statutory time limits of supervision sampling are working days (工作日): the sample reaches the lab within 5,
the lab reports within 20 of receiving it (《食品安全抽样检验管理办法》).  Which days are working days is
the State Council's yearly notice, not a rule: an operator adds a year by editing the data file.  The file
is read and checked once, where the standards catalogue is (``qrisk.runtime.default_rules``), and arrives in
the fold in ``processors.step.Rules``; counting reads no file and no clock.

Counting follows the law's way of counting a period (民法典 第二百零一条: the day it starts from is not
counted): ``working_days_between(calendar, sampled_on, received_on)`` is the working days after the sampling
day up to and including the day of receipt, so a sample taken on a Friday and received the next Monday took
1 working day.

A year the calendar does not hold is estimated (``estimate``, 估算): Monday–Friday, less the statutory holidays whose
dates are fixed by 《全国年节及纪念日放假办法》 (as revised 2024, in force from 2025: 元旦 1 January, 劳动节 1–2 May,
国庆节 1–3 October) and, for one of them on a Saturday or Sunday, the next weekday not already off (补假, 第六条), so
that a limit running over New Year does not end a day early.  The lunar holidays (春节, 清明节,
端午节, 中秋节) are not guessed: their dates, the days joined to them and the weekends moved to work (调休) exist only in
the State Council's notice for the year, and a guessed 春节 week would be as wrong as none.  Years before 2025 that the
calendar lacks are counted Monday–Friday only (the 办法 then gave 劳动节 one day; the packaged calendar holds 2024 on).
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, model_validator

CALENDAR_DIR = "calendar"
CALENDAR_FILE = "working_days.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaySpan(_Model):
    """One 放假 span of the notice, both ends included."""

    name: str = Field(min_length=1, max_length=40)
    from_: dt.date = Field(alias="from")
    to: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> "HolidaySpan":
        if self.to < self.from_:
            raise ValueError(f"{self.name}: to {self.to} is before from {self.from_}")
        if (self.to - self.from_).days > 14:
            raise ValueError(f"{self.name}: {self.from_} to {self.to} is longer than any statutory holiday (a typo?)")
        return self

    def days(self) -> list[dt.date]:
        return [self.from_ + dt.timedelta(days=i) for i in range((self.to - self.from_).days + 1)]


class CalendarYear(_Model):
    source: str = Field(min_length=1, max_length=400, description="the notice and where its text was read")
    verified: StrictBool = Field(description="false: an operator must check the year's dates against the notice")
    note: str = Field(default="", max_length=400)
    holidays: tuple[HolidaySpan, ...] = Field(min_length=1)
    working_weekends: tuple[dt.date, ...] = ()


_ONE = dt.timedelta(days=1)

FIXED_HOLIDAYS_FROM = 2025
"""The first year of the 2024 revision of 《全国年节及纪念日放假办法》, whose fixed-date holidays an estimate leaves out."""
FIXED_HOLIDAYS: tuple[tuple[str, int, int], ...] = (
    ("元旦", 1, 1), ("劳动节", 5, 1), ("劳动节", 5, 2), ("国庆节", 10, 1), ("国庆节", 10, 2), ("国庆节", 10, 3))
"""(name, month, day) of the statutory holidays with fixed dates (第二条); the lunar ones come only with the notice."""


def fixed_holidays(year: int) -> tuple[dt.date, ...]:
    """The fixed-date statutory holidays of ``year`` an estimate leaves out (none before ``FIXED_HOLIDAYS_FROM``)."""
    return tuple(dt.date(year, m, d) for _, m, d in FIXED_HOLIDAYS) if year >= FIXED_HOLIDAYS_FROM else ()


@functools.lru_cache(maxsize=64)
def estimated_days_off(year: int) -> frozenset[dt.date]:
    """The weekdays an estimate of ``year`` takes off: its fixed-date holidays on a weekday, and for each one on a
    Saturday or Sunday the next weekday not already off (补假, 《全国年节及纪念日放假办法》 第六条: 全体公民放假的假日，
    如果适逢星期六、星期日，应当在工作日补假) — 2027's 劳动节 (Saturday and Sunday) is made up on Monday 3 and Tuesday
    4 May.  No 补假 crosses into another year (元旦 on a weekend is made up by 3 January), so each year stands alone."""
    days = fixed_holidays(year)
    off = {d for d in days if d.weekday() < 5}
    for day in days:
        if day.weekday() >= 5:
            made_up = day + _ONE
            while made_up.weekday() >= 5 or made_up in off:
                made_up += _ONE
            off.add(made_up)
    return frozenset(off)


ESTIMATED_AS_ZH = "按周一至周五（除元旦、劳动节、国庆节法定日期及其补假）估算"
"""How a count across a year the calendar lacks was made, as a supervisor reads it."""
MOVED_ESTIMATE_ZH = f"含工作日历未收录的年份，{ESTIMATED_AS_ZH}"
"""Said after a deadline's moved day when the move rests on an estimate: the day may move again once the year's notice
is in (a lunar holiday or 调休 the estimate does not know)."""


def moved_deadline_zh(deadline: dt.date, moved_to: dt.date | str | None, estimate: bool = False) -> str:
    """期限 as said to a supervisor: ``2026-10-01（节假日顺延至 2026-10-08）`` when a holiday moved it, with 估算 when the
    move rests on a year the calendar lacks (``2027-01-01（节假日顺延至 2027-01-04；含工作日历未收录的年份，按…估算）``)."""
    moved = moved_to.isoformat() if isinstance(moved_to, dt.date) else moved_to
    if not moved or moved == deadline.isoformat():
        return deadline.isoformat()
    return deadline.isoformat() + (f"（节假日顺延至 {moved}；{MOVED_ESTIMATE_ZH}）" if estimate else f"（节假日顺延至 {moved}）")


MOVED_ESTIMATE_EN = "estimated: a year the working-day calendar lacks, Monday to Friday less New Year, Labour Day and National Day and the weekdays making up those on a weekend"

class _Index:
    """Working days counted once for the years the calendar holds, so that a count or a due date is a few lookups
    (the fold asks for several per sample and complaint; walking day by day through the model's private attributes
    cost ~150 µs a count).

    ``count(o)`` is the working days from a fixed origin up to and including the day of ordinal ``o``:
    Monday–Friday by arithmetic (0001-01-01 was a Monday), plus, from the first day the calendar holds, the running
    difference its holidays and working weekends make — constant after the last day it holds —, less the estimated
    days off (``estimated_days_off``: weekday fixed-date holidays and their 补假) of the years from 2025 it does not
    hold, up to that day."""

    __slots__ = ("first", "last", "adjust", "years", "unverified", "_fixed", "plain_until")

    def __init__(self, years: dict[int, CalendarYear], off: frozenset[dt.date], on: frozenset[dt.date]):
        self.years = frozenset(years)
        self.unverified = frozenset(year for year, y in years.items() if not y.verified)
        self.first, self.last, self.adjust = 0, -1, ()
        if years:
            first, last = dt.date(min(years), 1, 1).toordinal(), dt.date(max(years), 12, 31).toordinal()
            adjust, running = [], 0
            for ordinal in range(first, last + 1):
                day = dt.date.fromordinal(ordinal)
                weekday = day.weekday() < 5
                running += int(day in on or (weekday and day not in off)) - int(weekday)
                adjust.append(running)
            self.first, self.last, self.adjust = first, last, tuple(adjust)
        self._fixed: dict[int, tuple[int, tuple[int, ...]]] = {}
        unheld = FIXED_HOLIDAYS_FROM
        while unheld in self.years:
            unheld += 1
        self.plain_until = dt.date(unheld, 1, 1).toordinal()

    def fixed_off(self, year: int) -> tuple[int, tuple[int, ...]]:
        """For a year from 2025: the days off of the years not held from 2025 up to the year before
        (``estimated_days_off``: weekday fixed-date holidays and 补假), and the ordinals of the year's own (none when it
        is held).  Kept per year once asked (deterministic)."""
        known = self._fixed.get(year)
        if known is not None:
            return known
        start = max((y for y in self._fixed if y < year), default=FIXED_HOLIDAYS_FROM - 1)
        before, own = self._fixed.get(start, (0, ()))
        for y in range(start + 1, year + 1):  # (iterated, not recursed: a date in 9999 is a valid date)
            before += len(own)
            own = () if y in self.years else tuple(sorted(d.toordinal() for d in estimated_days_off(y)))
            self._fixed[y] = (before, own)
        return before, own

    def count(self, ordinal: int) -> int:
        full, rest = divmod(ordinal, 7)
        weekdays = full * 5 + min(rest, 5)
        if ordinal >= self.first:
            weekdays += self.adjust[min(ordinal, self.last) - self.first]
        if ordinal < self.plain_until:
            return weekdays  # (no fixed-date holiday of a year not held before it: the common case, no date built)
        before, own = self.fixed_off(dt.date.fromordinal(ordinal).year)
        return weekdays - before - sum(1 for o in own if o <= ordinal)

    def uncovered(self, start: dt.date, end: dt.date) -> tuple[int, ...]:
        """The years of the days after ``start`` up to ``end`` that the calendar does not hold."""
        return tuple(y for y in range((start + _ONE).year, end.year + 1) if y not in self.years) if end > start else ()

    def unverified_between(self, first_year: int, last_year: int) -> tuple[int, ...]:
        return tuple(y for y in range(first_year, last_year + 1) if y in self.unverified)



class WorkingCalendar(_Model):
    """The years the notices cover; any other day is counted Monday–Friday less the fixed-date holidays from 2025 (an
    estimate)."""

    years: dict[int, CalendarYear]
    digest: str = Field(default="", description="sha256 of the data file")

    _off: frozenset[dt.date] = PrivateAttr(default=frozenset())
    _on: frozenset[dt.date] = PrivateAttr(default=frozenset())
    _unverified: frozenset[int] = PrivateAttr(default=frozenset())
    _index: _Index = PrivateAttr(default_factory=lambda: _Index({}, frozenset(), frozenset()))

    @model_validator(mode="after")
    def _consistent(self) -> "WorkingCalendar":
        for year, data in self.years.items():
            for span in data.holidays:
                for day in (span.from_, span.to):
                    # (a span across New Year would belong to both years: none has, and a typo is likelier)
                    if day.year != year:
                        raise ValueError(f"{year}: holiday {span.name} ({day}) lies in another year")
            off = {d for span in data.holidays for d in span.days()}
            for day in data.working_weekends:
                if day.year != year:
                    raise ValueError(f"{year}: working weekend day {day} lies in another year")
                if day.weekday() < 5:
                    raise ValueError(f"{year}: working_weekends lists {day}, a weekday: only a Saturday or Sunday is moved to work")
                if day in off:
                    raise ValueError(f"{year}: {day} is listed both as a holiday and as a working weekend day")
        return self

    def model_post_init(self, __context: Any) -> None:
        self._off = frozenset(d for y in self.years.values() for span in y.holidays for d in span.days())
        self._on = frozenset(d for y in self.years.values() for d in y.working_weekends)
        self._unverified = frozenset(year for year, y in self.years.items() if not y.verified)
        self._index = _Index(self.years, self._off, self._on)

    def covers(self, day: dt.date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: dt.date) -> bool:
        """Monday–Friday unless a holiday, or a weekend day moved to work; a year not held: Monday–Friday unless a
        fixed-date statutory holiday or the weekday making up for one on a weekend (``estimated_days_off``)."""
        if day in self._on:
            return True
        if day.year not in self.years and day in estimated_days_off(day.year):
            return False
        return day.weekday() < 5 and day not in self._off


@dataclass(frozen=True)
class WorkingDays:
    """A count of working days, and how far to trust it."""

    days: int
    estimate: bool
    """Some day counted lies in a year the calendar does not hold: counted Monday–Friday less its fixed-date holidays
    (元旦, 劳动节, 国庆节) and their 补假, the lunar holidays and 调休 unknown."""
    uncovered_years: tuple[int, ...] = ()
    unverified_years: tuple[int, ...] = ()
    """Years counted across whose dates an operator has not checked against the notice (``verified: false``)."""


def working_days_between(calendar: WorkingCalendar, start: dt.date, end: dt.date) -> WorkingDays:
    """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return WorkingDays(0, False)
    index: _Index = calendar.__pydantic_private__["_index"]  # (not through the model's __getattr__: ~1 µs a read)
    first, last = start.toordinal(), end.toordinal()
    days = index.count(last) - index.count(first)
    if index.first <= first and last <= index.last and not index.unverified:
        return WorkingDays(days, False)  # (the common case: every day held, every year checked)
    uncovered = index.uncovered(start, end)
    return WorkingDays(days, bool(uncovered), uncovered, index.unverified_between(start.year, end.year))


@dataclass(frozen=True)
class DueDate:
    """The day a time limit of working days ends, and how far to trust it (as ``WorkingDays``)."""

    on: dt.date
    estimate: bool
    """Some day counted lies in a year the calendar does not hold: counted Monday–Friday less its fixed-date holidays
    (元旦, 劳动节, 国庆节) and their 补假, the lunar holidays and 调休 unknown."""
    uncovered_years: tuple[int, ...] = ()
    unverified_years: tuple[int, ...] = ()


def add_working_days(calendar: WorkingCalendar, start: dt.date, days: int) -> DueDate:
    """The ``days``-th working day after ``start`` (``start`` itself not counted, as ``working_days_between``): the last
    day of a time limit of ``days`` working days counted from ``start``, so that ``working_days_between(calendar, start,
    due) == days``.  A limit ending in a holiday runs to the working day after it (民法典 第二百零三条 moves a period's last
    day off a 法定休假日 the same way).  ``days`` 0 is ``start``."""
    if days < 0:
        raise ValueError(f"days must not be negative: {days}")
    index: _Index = calendar.__pydantic_private__["_index"]
    origin = start.toordinal()
    target = index.count(origin) + days
    # the first day whose count reaches the target (a working day: the count rises only on one); a fortnight of
    # holidays at most stands between two working days, so the bound below always reaches it
    lo, hi = origin, origin + 2 * days + 15
    while lo < hi:
        mid = (lo + hi) // 2
        if index.count(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    due = dt.date.fromordinal(lo)
    uncovered = index.uncovered(start, due)
    return DueDate(due, bool(uncovered), uncovered, index.unverified_between(start.year, due.year))


def period_end(calendar: WorkingCalendar, last_day: dt.date) -> DueDate:
    """The day a period set by date (a rectification's ``deadline``, an interview's ``follow_up_by``) really ends:
    ``last_day`` itself when a working day, else the first working day after it — 民法典 第二百零三条 (期间的最后一日是法定
    休假日的，以法定休假日结束的次日为期间的最后一日), as ``add_working_days`` moves a limit of working days.  A deadline of
    2026-10-01 ends 2026-10-08: the office is closed until then, and nothing is late during the holiday."""
    return add_working_days(calendar, last_day - _ONE, 1)


# --------------------------------------------------------------------------- loading


class CalendarError(ValueError):
    """The data file is missing, unreadable or invalid; the message names the file."""


def _parse(raw: bytes, name: str) -> WorkingCalendar:
    from schemas.standards import _UniqueKeyLoader  # (refuses a repeated key, as the catalogue does)

    try:
        doc = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CalendarError(f"{name}: {exc}") from exc
    if not isinstance(doc, dict) or "years" not in doc:
        raise CalendarError(f"{name}: expected a mapping with a 'years' key")
    try:
        return WorkingCalendar.model_validate({**doc, "digest": hashlib.sha256(raw).hexdigest()})
    except ValueError as exc:
        raise CalendarError(f"{name}: {exc}") from exc


@functools.lru_cache(maxsize=1)
def _default_calendar() -> WorkingCalendar:
    entry = resources.files("schemas").joinpath("standards").joinpath(CALENDAR_DIR).joinpath(CALENDAR_FILE)
    return _parse(entry.read_bytes(), CALENDAR_FILE)


def load_calendar(path: str | None = None) -> WorkingCalendar:
    """Load and check the calendar in file ``path`` (default: the packaged data, cached)."""
    if path is None:
        return _default_calendar()
    file = Path(path)
    if not file.is_file():
        raise CalendarError(f"{path}: not a file")
    return _parse(file.read_bytes(), file.name)


__all__ = ["ESTIMATED_AS_ZH", "MOVED_ESTIMATE_EN", "MOVED_ESTIMATE_ZH", "CalendarError", "CalendarYear", "DueDate", "HolidaySpan", "WorkingCalendar", "WorkingDays", "FIXED_HOLIDAYS", "add_working_days", "estimated_days_off", "fixed_holidays", "load_calendar", "moved_deadline_zh", "period_end", "working_days_between"]
