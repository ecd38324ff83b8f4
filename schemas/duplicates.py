"""When two complaints of one enterprise are likely one complaint registered twice (12315 and a letter, a day apart,
the same words, under two complaint numbers).  One notion for the door, which tells the sender
(``ingest.lint``: ``complaint_possible_duplicate``), and the fold, whose 投诉集中 and 投诉聚集 alerts tell the supervisor
(``processors.warnings``): here, because ingest may not import processors and both may import schemas."""
from __future__ import annotations

import datetime as dt
import difflib
import unicodedata

from schemas.policy import ComplaintDuplicatesPolicy

_NOT_WORDS = str.maketrans("", "", " \t\r\n，,。.；;：:！!？?、“”\"'‘’（）()【】[]…-—～~")


def plain_text(text: str) -> str:
    """The words of a complaint, spaces and punctuation aside (full-width forms folded)."""
    return unicodedata.normalize("NFKC", text).translate(_NOT_WORDS)


def duplicate_similarity(text: str, at: dt.datetime, other_text: str, other_at: dt.datetime,
                         rule: ComplaintDuplicatesPolicy) -> float | None:
    """How alike two complaints' texts are (difflib's ratio of their words; 1.0: the same) when the rule takes them for
    one complaint registered twice — received within ``within_days`` of each other, both at least ``min_chars`` long,
    at least ``min_similarity`` alike — else None.  A short complaint said alike by two consumers is no sign of one."""
    if rule.within_days <= 0 or abs(at - other_at) > dt.timedelta(days=rule.within_days):
        return None
    mine, theirs = plain_text(text), plain_text(other_text)
    if len(mine) < rule.min_chars or len(theirs) < rule.min_chars:
        return None
    if mine == theirs:
        return 1.0
    matcher = difflib.SequenceMatcher(None, mine, theirs, autojunk=False)
    # (the quick bounds first: a 投诉聚集 compares each of its complaints with the others, texts of up to 4,000 characters)
    if matcher.real_quick_ratio() < rule.min_similarity or matcher.quick_ratio() < rule.min_similarity:
        return None
    alike = matcher.ratio()
    return alike if alike >= rule.min_similarity else None
