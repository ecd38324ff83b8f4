"""Run rules (Western Electric 1-4, Nelson 5-8) on a standardised series.

Numbering used by qrisk (it is NOT Nelson's 1984 numbering for 2-6):

====  ==========================================  ========================
 id   pattern                                      Nelson (1984) number
====  ==========================================  ========================
 1    1 point beyond 3σ                            1
 2    2 of 3 consecutive beyond 2σ, same side      5
 3    4 of 5 consecutive beyond 1σ, same side      6
 4    8 in a row on one side of the centre line    (Nelson 2 uses 9)
 5    6 in a row steadily increasing/decreasing    3
 6    14 in a row alternating up and down          4
 7    15 in a row within 1σ (either side)          7
 8    8 in a row beyond 1σ (either side)           8
====  ==========================================  ========================

1-4 are the Western Electric zone rules, 5-8 Nelson's additions, so "we"
selects 1-4 and "nelson" all eight.  The default is {1, 2, 4}: with every
rule on, a long in-control series raises false alarms almost surely, and the
supervisors this serves drown in them.

Conventions (chosen to match Minitab's tests):
* "beyond kσ" is strict (|z| > k); a point exactly on the centre line breaks
  a same-side run, a tie breaks a trend or an alternation.
* A rule fires at every point that completes its pattern, so a run of 10
  points above the centre line flags points 8, 9 and 10; the alert layer
  groups them.  Rules 2 and 3 fire only on a point that is itself beyond the
  zone, so one pattern is not reported twice for a trailing in-zone point.
* At the start of a series, rules 2 and 3 count over the points available
  (2 of the first 2 beyond 2σ fires), which is the more sensitive reading.
* Rules 5 and 6 look at the plotted values, the others at z = (value −
  centre)/σ of that point, so charts with per-point limits (p, u, x̄ with
  varying n) use the right zone widths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ALL_RULES = (1, 2, 3, 4, 5, 6, 7, 8)
WESTERN_ELECTRIC = (1, 2, 3, 4)
DEFAULT_RULES = (1, 2, 4)

# Dispersion charts only use "beyond the limits": zone rules assume a
# symmetric distribution that R, S and MR do not have.
_DISPERSION = frozenset({"r", "s", "mr"})
_OWN_LIMITS = frozenset({"ewma", "cusum"})

RulesSpec = Sequence[int] | Mapping[str, Sequence[int]]


def parse_rules(text: str | Iterable[int] | None) -> tuple[int, ...]:
    """'we' -> 1-4, 'nelson' -> 1-8, 'default' or None -> {1,2,4}, '1,2,4' -> (1,2,4)."""
    if text is None:
        return DEFAULT_RULES
    if not isinstance(text, str):
        nums = list(text)
    else:
        key = text.strip().lower()
        if key in ("we", "western-electric", "westernelectric"):
            return WESTERN_ELECTRIC
        if key in ("nelson", "all"):
            return ALL_RULES
        if key in ("default", ""):
            return DEFAULT_RULES
        nums = []
        for part in key.split(","):
            part = part.strip()
            if not part.isdigit():
                raise ValueError(f"run rule {part!r} is not a number 1-8 (or 'we', 'nelson')")
            nums.append(int(part))
    for n in nums:
        if n not in ALL_RULES:
            raise ValueError(f"run rule {n} does not exist; rules are numbered 1-8")
    return tuple(sorted(set(nums)))


def rules_for_chart(kind: str, rules: RulesSpec | None = None) -> tuple[int, ...]:
    """The rules a chart kind actually uses, given a flat set or a per-kind mapping."""
    if kind in _OWN_LIMITS:
        return ()
    if kind in _DISPERSION:
        return (1,)
    if rules is None:
        return DEFAULT_RULES
    if isinstance(rules, Mapping):
        chosen = rules.get(kind, rules.get("default", DEFAULT_RULES))
        return parse_rules(chosen)
    return parse_rules(rules)


class RunRuleTracker:
    """Incremental run-rule state: O(1) per point, only the windows the rules need.

    ``push(z, x)`` returns None when nothing fires (the common case, kept
    allocation-free) or a list of ``(rule, side, trend)`` tuples.
    """

    __slots__ = ("rules", "_r1", "_r2", "_r3", "_r4", "_r5", "_r6", "_r7", "_r8",
                 "recent", "above", "below", "inner", "outer",
                 "last_x", "up", "down", "alt", "last_sign")

    def __init__(self, rules: Iterable[int] = DEFAULT_RULES) -> None:
        self.rules = parse_rules(rules)
        self._flags()
        self.recent: list[float] = []   # up to 4 previous z values
        self.above = 0
        self.below = 0
        self.inner = 0
        self.outer = 0
        self.last_x: float | None = None
        self.up = 0
        self.down = 0
        self.alt = 0
        self.last_sign = 0

    def _flags(self) -> None:
        r = set(self.rules)
        (self._r1, self._r2, self._r3, self._r4,
         self._r5, self._r6, self._r7, self._r8) = (i in r for i in ALL_RULES)

    def push(self, z: float, x: float) -> list[tuple[int, str | None, str | None]] | None:
        fired = None
        if z > 0.0:
            self.above += 1
            self.below = 0
        elif z < 0.0:
            self.below += 1
            self.above = 0
        else:
            self.above = self.below = 0
        az = z if z >= 0.0 else -z
        if az < 1.0:
            self.inner += 1
            self.outer = 0
        elif az > 1.0:
            self.outer += 1
            self.inner = 0
        else:
            self.inner = self.outer = 0
        lx = self.last_x
        if lx is not None:
            if x > lx:
                self.up += 1
                self.down = 0
                if self.last_sign < 0:
                    self.alt += 1
                else:
                    self.alt = 1
                self.last_sign = 1
            elif x < lx:
                self.down += 1
                self.up = 0
                if self.last_sign > 0:
                    self.alt += 1
                else:
                    self.alt = 1
                self.last_sign = -1
            else:
                self.up = self.down = self.alt = 0
                self.last_sign = 0
        self.last_x = x
        recent = self.recent

        if self._r1 and az > 3.0:
            fired = [(1, "upper" if z > 0 else "lower", None)]
        if self._r2 and az > 2.0:
            prev = recent[-2:]
            if z > 0:
                hit = any(p > 2.0 for p in prev)
            else:
                hit = any(p < -2.0 for p in prev)
            if hit:
                (fired := fired or []).append((2, "upper" if z > 0 else "lower", None))
        if self._r3 and az > 1.0:
            if z > 0:
                cnt = sum(1 for p in recent if p > 1.0)
            else:
                cnt = sum(1 for p in recent if p < -1.0)
            if cnt >= 3:
                (fired := fired or []).append((3, "upper" if z > 0 else "lower", None))
        if self._r4 and (self.above >= 8 or self.below >= 8):
            (fired := fired or []).append((4, "upper" if self.above else "lower", None))
        if self._r5 and (self.up >= 5 or self.down >= 5):
            (fired := fired or []).append(
                (5, None, "increasing" if self.up >= 5 else "decreasing"))
        if self._r6 and self.alt >= 13:
            (fired := fired or []).append((6, None, None))
        if self._r7 and self.inner >= 15:
            (fired := fired or []).append((7, None, None))
        if self._r8 and self.outer >= 8:
            (fired := fired or []).append((8, None, None))

        recent.append(z)
        if len(recent) > 4:
            del recent[0]
        return fired

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "recent": list(self.recent),
                "above": self.above, "below": self.below, "inner": self.inner,
                "outer": self.outer, "last_x": self.last_x, "up": self.up,
                "down": self.down, "alt": self.alt, "last_sign": self.last_sign}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunRuleTracker":
        t = cls(d["rules"])
        t.recent = [float(v) for v in d["recent"]]
        for name in ("above", "below", "inner", "outer", "up", "down", "alt", "last_sign"):
            setattr(t, name, int(d[name]))
        t.last_x = None if d["last_x"] is None else float(d["last_x"])
        return t


def standardise(value: float, center: float, sigma: float) -> float:
    """z-score; a zero sigma turns any deviation into an infinite one (rule 1 fires)."""
    if sigma > 0.0:
        return (value - center) / sigma
    if value == center:
        return 0.0
    return float("inf") if value > center else float("-inf")


def apply_rules(values: Sequence[float | None], centers: Sequence[float],
                sigmas: Sequence[float], rules: Iterable[int] = DEFAULT_RULES,
                ) -> list[list[tuple[int, str | None, str | None]]]:
    """Batch form: the rules that fire at each point (None values are skipped and break no run)."""
    tracker = RunRuleTracker(rules)
    out: list[list[tuple[int, str | None, str | None]]] = []
    for x, c, s in zip(values, centers, sigmas):
        if x is None:
            out.append([])
            continue
        out.append(tracker.push(standardise(x, c, s), x) or [])
    return out
