"""Who may correct a report: the sender, not the lab name it prints.

A lab system's key is bound to its CMA number (``source.id``), kept as the record's ``lab_id``; the lab
name a report prints is the sender's word.  A report a lab system sent corrects only a report the same
lab system sent: a result imported from an SAMR announcement, or posted by an admin or the bureau (no
``lab_id``), is not corrected away by any lab key printing its lab name — that report is filed
``other_lab``, not counted, 待核实.  Reports no lab system sent (trusted) correct one another by the
printed name, and take a lab system's report's place whatever they print and however they are dated: a lab
key that sends a sample number first cannot pre-empt the announcement.

The door's ``sample_no_on_file`` warning says the same, and tells a lab system nothing of another
sender's report (its event id, its lab): only its own earlier reports are named to it."""
from __future__ import annotations

import copy
import uuid

import pytest

from ingest.lint import accepted_warnings, event_warnings
from ingest.mapping import MappingError, load_mapping, read_mapped
from ingest.validate import Rejection, validate_document
from processors.step import replay
from schemas.upcast import parse_event
from tests.conftest import ROOT, golden

MAPPINGS = ROOT / "ingest" / "mappings"
SAMPLE_NO = "DC23330100123456"  # the announcement's W03 sample: 铜绿假单胞菌 and 耗氧量 不合格
LAB = "县食品检验检测中心"  # the lab the announcement names
COUNTY_LAB = golden("sampling.result")["source"]  # CMA-330100-0451, whose reports print LAB
OTHER_LAB = {"kind": "lab", "id": "CMA-330100-0999", "name": "别家检测公司"}
IMPORTER = {"kind": "importer", "id": "samr-announcement", "name": "监督抽检公告"}
_n = 0


def _id() -> str:
    global _n
    _n += 1
    return str(uuid.UUID(int=90_000 + _n, version=4))


def _registered():
    doc = golden("enterprise.registered")
    doc.update(enterprise_id="W03", event_id=_id(), occurred_at="2023-01-05T09:00:00+08:00")
    return parse_event(doc)


def _imported():
    """The W03 failure as ``qrisk import sampling … --mapping samr_announcement.yaml`` makes it (source kind importer)."""
    for _, raw, doc in read_mapped(MAPPINGS / "examples" / "samr_announcement.csv", load_mapping(MAPPINGS / "samr_announcement.yaml")):
        if isinstance(doc, MappingError):
            continue
        event = validate_document(doc, None, raw)
        if not isinstance(event, Rejection) and event.payload.sample_no == SAMPLE_NO:
            assert event.source.kind == "importer" and event.payload.lab == LAB
            return event
    raise AssertionError("the announcement example lost its W03 row")


def _report(of, source: dict, at: str, passes: bool = True, lab: str | None = None, retest: bool | None = None):
    """``of``'s sample reported again by ``source`` under a new event id: passing (the values clean), or as it was."""
    doc = of.model_dump(mode="json", exclude_unset=True)
    doc["event_id"], doc["occurred_at"], doc["source"] = _id(), at, copy.deepcopy(source)
    if passes:
        for item in doc["payload"]["items"]:
            item["values"] = [0] * len(item["values"]) if item["item_code"] == "pseudomonas_aeruginosa" else [1.0] * len(item["values"])
            item["lab_verdict"] = "合格"
    if lab is not None:
        doc["payload"]["lab"] = lab
    if retest is not None:
        doc["payload"]["retest"] = retest
    return parse_event(doc)


def _from(source: dict, of=None, at: str = "2023-09-25T09:00:00+08:00"):
    """The announcement's failure as posted by another sender (an admin's back-fill, the bureau)."""
    return _report(of or _imported(), source, at, passes=False)


def fold(rules, *events):
    state, effects = replay([_registered(), *events], rules)
    return state, state.files["W03"], effects


def sampled(f):
    return (f.counts.samples, f.counts.samples_passed, f.counts.samples_failed)


def of(effects, event, kind=None):
    return [e for e in effects if e.event_id == str(event.event_id) and (kind is None or e.kind == kind)]


# --------------------------------------------------------------------------- the fold


@pytest.mark.parametrize("key", [OTHER_LAB, COUNTY_LAB], ids=["another lab's key", "the named lab's key"])
def test_an_imported_failure_is_not_corrected_away_by_a_lab_key(rules, key):
    """The finding: a lab key printing the announcement's lab name took the imported failure's place (the
    county's failed/passed went 57/9 → 56/10).  Any lab key: the printed name is the key's word, and the
    importer's report was sent by no lab system."""
    imported = _imported()
    _, before, _ = fold(rules, imported)
    assert sampled(before) == (1, 0, 1)
    forged = _report(imported, key, "2023-10-20T09:00:00+08:00")
    assert forged.payload.lab == imported.payload.lab
    state, f, effects = fold(rules, imported, forged)
    assert sampled(f) == (1, 0, 1) and f.pass_rate == 0.0  # the failure still counts
    assert [s.event_id for s in f.final_samples()] == [str(imported.event_id)]
    record = f.sample_by_event(str(forged.event_id))
    assert (record.superseded_by, record.superseded_as, record.lab_id) == (str(imported.event_id), "other_lab", key["id"])
    assert record.judgement.verdict == "pass"  # on file, for a supervisor to check
    assert f.sample_by_event(str(imported.event_id)).superseded_as is None
    assert not of(effects, forged, "sampling.overturned") and not of(effects, forged, "sampling.corrected")
    (conflict,) = of(effects, forged, "sampling.sample_no_conflict")
    said = conflict.data["message_zh"]
    assert "署名相同" in said and key["id"] in said and "不是由检验机构系统报送" in said and "不计入统计" in said
    # a risk entry for the failure, and no alert resolved
    assert [e for e in f.risk.entries if e[1] == "sampling_failed"]
    assert not of(effects, forged, "warning.resolved")


@pytest.mark.parametrize("sender", [
    {"kind": "bureau", "id": "county-msb", "name": "县市场监督管理局"},
    {"kind": "importer", "id": "admin-backfill", "name": "管理员补录"},
    {"kind": "system", "id": "qrisk-admin", "name": "管理员"},
], ids=["bureau", "admin's import", "admin"])
def test_a_failure_an_admin_or_the_bureau_posted_is_not_corrected_away_by_a_lab_key(rules, sender):
    posted = _from(sender)
    forged = _report(posted, OTHER_LAB, "2023-10-20T09:00:00+08:00")
    _, f, effects = fold(rules, posted, forged)
    assert sampled(f) == (1, 0, 1)
    assert f.sample_by_event(str(forged.event_id)).superseded_as == "other_lab"
    assert not of(effects, forged, "sampling.overturned")


def test_a_lab_key_dating_its_report_before_the_import_does_not_put_it_aside_either(rules):
    """An earlier-dated report from the lab key does not get the import filed as outdated: it is no report of the importer's."""
    imported = _imported()
    early = _report(imported, OTHER_LAB, "2023-09-01T09:00:00+08:00")
    _, f, _ = fold(rules, imported, early)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(early.event_id)).superseded_as == "other_lab"


def test_a_lab_key_cannot_correct_an_imported_retest(rules):
    """The same rule for a 复检 on file: a lab key's ``retest: true`` report under its number corrects only its own."""
    imported = _imported()
    retest = _report(imported, IMPORTER, "2023-10-10T09:00:00+08:00", passes=False, lab="市食品药品检验研究院", retest=True)
    # (a microbial failure admits no re-test: the importer's re-test of it is refused, and stays on file as refused)
    forged = _report(retest, OTHER_LAB, "2023-10-12T09:00:00+08:00")
    _, f, effects = fold(rules, imported, retest, forged)
    assert sampled(f) == (1, 0, 1)
    assert f.sample_by_event(str(forged.event_id)).superseded_as == "other_lab"
    assert f.sample_by_event(str(retest.event_id)).superseded_as == "retest_inadmissible"
    assert not of(effects, forged, "sampling.corrected")


def test_the_same_lab_system_still_corrects_its_own_report(rules):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    # its own key, even printing its name spaced otherwise: the sender decides
    fixed = _report(first, COUNTY_LAB, "2023-09-26T09:00:00+08:00", lab="县食品检验 检测中心")
    _, f, effects = fold(rules, first, fixed)
    assert sampled(f) == (1, 1, 0)
    assert f.sample_by_event(str(fixed.event_id)).corrects == str(first.event_id)
    assert of(effects, fixed, "sampling.corrected")
    # another lab system's key correcting it: another lab's result, as before
    forged = _report(first, OTHER_LAB, "2023-09-27T09:00:00+08:00")
    _, f, _ = fold(rules, first, forged)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(forged.event_id)).superseded_as == "other_lab"


def test_an_importer_still_corrects_an_imported_report_by_lab_name(rules):
    imported = _imported()
    fixed = _report(imported, IMPORTER, "2023-10-20T09:00:00+08:00")
    _, f, effects = fold(rules, imported, fixed)
    assert sampled(f) == (1, 1, 0)
    assert f.sample_by_event(str(fixed.event_id)).corrects == str(imported.event_id)
    assert of(effects, fixed, "sampling.corrected")
    # under another lab's name it is another lab's result, as before
    other = _report(imported, IMPORTER, "2023-10-21T09:00:00+08:00", lab="市食品药品检验研究院")
    _, f, _ = fold(rules, imported, other)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(other.event_id)).superseded_as == "other_lab"


def test_a_trusted_sender_corrects_a_lab_systems_report_by_its_lab_name(rules):
    """The by-name rule stays for senders that are no lab system: an admin's back-fill of the announcement
    corrects the lab's report under the lab's name."""
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00")  # passing
    announced = _from(IMPORTER, at="2023-10-20T09:00:00+08:00")  # the announcement's failure, re-posted later
    _, f, _ = fold(rules, first, announced)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(announced.event_id)).corrects == str(first.event_id)


# --------------------------------------------------------------------------- the door's answer


def _warned(event, on_file):
    from schemas.standards import load_catalogue

    return [w for w in event_warnings(event, load_catalogue(), "packaged_water", on_file=on_file) if w["type"] == "sample_no_on_file"]


def _texts(w) -> str:
    return w["reason"] + " " + w["reason_zh"]


def test_a_lab_posting_under_another_senders_number_hears_nothing_of_that_report(rules):
    imported = _imported()
    forged = _report(imported, OTHER_LAB, "2023-10-20T09:00:00+08:00", lab="别家检测公司")
    _, before, _ = fold(rules, imported)
    for on_file in (before.samples, before.view()["samples"]):
        # not folded yet (as the Kafka mode's view answers): as the fold will take it — not a correction
        (w,) = _warned(forged, on_file)
        assert str(imported.event_id) not in _texts(w) and LAB not in _texts(w)
        assert "其他报送方" in w["reason_zh"] and "不作为更正" in w["reason_zh"] and "不计入统计" in w["reason_zh"]
        assert "another sender" in w["reason"] and "not taken as a correction" in w["reason"]
        assert "按更正处理" not in w["reason_zh"] and "replacing it" not in w["reason"]
    # folded (the embedded runtime answers after the fold), through the door's own entry point
    state, f, _ = fold(rules, imported, forged)
    (w,) = [w for w in accepted_warnings(forged, rules.catalogue, f) if w["type"] == "sample_no_on_file"]
    assert str(imported.event_id) not in _texts(w) and LAB not in _texts(w) and "不作为更正" in w["reason_zh"]


def test_a_lab_printing_the_imported_reports_lab_name_is_not_told_it_corrects_it(rules):
    """The finding: the door told the lab key 'this one will be taken as a correction replacing it'."""
    imported = _imported()
    forged = _report(imported, COUNTY_LAB, "2023-10-20T09:00:00+08:00")
    _, before, _ = fold(rules, imported)
    (w,) = _warned(forged, before.view()["samples"])
    assert "不作为更正" in w["reason_zh"] and "按更正处理" not in w["reason_zh"]
    assert str(imported.event_id) not in _texts(w)


def test_another_lab_systems_report_is_not_named_to_a_lab(rules):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    forged = _report(first, OTHER_LAB, "2023-09-27T09:00:00+08:00")
    state, f, _ = fold(rules, first, forged)
    (w,) = _warned(forged, f.samples)
    assert str(first.event_id) not in _texts(w) and "另一检验机构" in w["reason_zh"]


def test_a_lab_hears_its_own_earlier_report_named(rules):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    fixed = _report(first, COUNTY_LAB, "2023-09-26T09:00:00+08:00")
    _, before, _ = fold(rules, first)
    (w,) = _warned(fixed, before.samples)  # not folded yet: its correction
    assert f"事件 {first.event_id}，{LAB}" in w["reason_zh"] and str(first.event_id) in w["reason"] and "按更正处理" in w["reason_zh"]
    state, f, _ = fold(rules, first, fixed)
    (w,) = _warned(fixed, f.samples)  # folded
    assert f"事件 {first.event_id}，{LAB}" in w["reason_zh"] and "本次按更正处理" in w["reason_zh"]
    # its first report retried after the correction: named too
    (w,) = _warned(first, f.samples)
    assert f"事件 {fixed.event_id}" in w["reason_zh"] and "更正取代" in w["reason_zh"]


def test_a_lab_whose_report_an_importer_corrected_hears_of_it_without_its_details(rules):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00")
    announced = _from(IMPORTER, at="2023-10-20T09:00:00+08:00")
    state, f, _ = fold(rules, first, announced)
    assert f.sample_by_event(str(announced.event_id)).corrects == str(first.event_id)
    (w,) = _warned(first, f.samples)  # the lab's first report retried: replaced since
    assert "其他报送方后来的报告更正取代" in w["reason_zh"] and "another sender" in w["reason"]
    assert str(announced.event_id) not in _texts(w)


@pytest.mark.parametrize("sender", [IMPORTER, {"kind": "bureau", "id": "county-msb", "name": "县市场监督管理局"}], ids=["importer", "bureau"])
def test_a_sender_that_is_no_lab_system_hears_the_details(rules, sender):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    other = _report(first, sender, "2023-10-20T09:00:00+08:00", lab="市食品药品检验研究院")
    _, before, _ = fold(rules, first)
    (w,) = _warned(other, before.samples)  # not folded yet: it will take the lab system's report's place
    assert f"事件 {first.event_id}，{LAB}" in w["reason_zh"] and COUNTY_LAB["id"] in w["reason_zh"]
    assert "将取代原结果" in w["reason_zh"] and "will replace it" in w["reason"] and "不计入统计" not in w["reason_zh"]
    state, f, _ = fold(rules, first, other)
    (w,) = _warned(other, f.samples)
    assert f"事件 {first.event_id}，{LAB}" in w["reason_zh"] and str(first.event_id) in w["reason"] and "本次按更正处理" in w["reason_zh"]
    # another trusted sender's report under another lab's name: another lab's result, as before
    imported = _imported()
    other = _report(imported, sender, "2023-10-20T09:00:00+08:00", lab="市食品药品检验研究院")
    _, before, _ = fold(rules, imported)
    (w,) = _warned(other, before.samples)
    assert f"事件 {imported.event_id}，{LAB}" in w["reason_zh"] and "另一检验机构" in w["reason_zh"]


# --------------------------------------------------------------------------- a lab system's report sent first


@pytest.mark.parametrize("lab, at", [
    (LAB, "2023-10-20T09:00:00+08:00"),  # the announcement's lab name, dated after the announcement's report
    ("别家检测公司", "2023-09-20T09:00:00+08:00"),  # its own name, dated before
], ids=["the announcement's lab name, dated later", "its own name"])
@pytest.mark.parametrize("key", [OTHER_LAB, COUNTY_LAB], ids=["another lab's key", "the named lab's key"])
def test_a_lab_key_sending_the_number_first_does_not_pre_empt_the_announcement(rules, key, lab, at):
    """The finding left open last round: the first report owned the number, so a lab key's passing report sent
    before the announcement was imported had the import filed as ``outdated`` (the same name, dated later) or
    ``other_lab``, and the failure never counted.  The supervisor's record takes the lab system's report's
    place, whichever came first; the lab's report stays on file, named in the correction for checking."""
    imported = _imported()
    first = _report(imported, key, at, lab=lab)  # passing
    _, alone, _ = fold(rules, imported)
    for order in ((first, imported), (imported, first)):
        _, f, effects = fold(rules, *order)
        assert sampled(f) == sampled(alone) == (1, 0, 1), order
        assert [s.event_id for s in f.final_samples()] == [str(imported.event_id)]
        assert [e for e in f.risk.entries if e[1] == "sampling_failed"]
        assert not of(effects, first, "sampling.overturned") and not of(effects, imported, "sampling.overturned")
    _, f, effects = fold(rules, first, imported)
    record = f.sample_by_event(str(first.event_id))
    assert (record.superseded_by, record.superseded_as) == (str(imported.event_id), "corrected")
    assert f.sample_by_event(str(imported.event_id)).corrects == str(first.event_id)
    (corrected,) = of(effects, imported, "sampling.corrected")
    assert corrected.data["official"] is True and corrected.data["counts"] is True
    said = corrected.data["message_zh"]
    assert "不是由检验机构系统报送" in said and key["id"] in said and str(first.event_id) in said and "请核实其来源" in said
    assert of(effects, imported, "sampling.failed")  # the failure the lab's report had hidden, raised once
    # the lab system's correction of its own report after the import: the import stands
    again = _report(first, key, "2023-10-25T09:00:00+08:00", lab=lab)  # (its passing result, sent again later)
    _, f, _ = fold(rules, first, imported, again)
    assert sampled(f) == (1, 0, 1) and f.sample_by_event(str(again.event_id)).superseded_as == "other_lab"


def test_an_announcement_nobody_can_judge_does_not_overturn_a_lab_systems_failure(rules):
    """The supervisor's record takes the lab system's report's place, but a result qrisk cannot judge still
    does not clear a failure (as for any correction): the failure on file stands."""
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    doc = _report(first, IMPORTER, "2023-10-20T09:00:00+08:00").model_dump(mode="json", exclude_unset=True)
    for item in doc["payload"]["items"]:
        item["unit"] = "furlongs"  # (passing values in a unit nobody knows)
    unjudged = parse_event(doc)
    _, f, effects = fold(rules, first, unjudged)
    assert sampled(f) == (1, 0, 1)
    assert f.sample_by_event(str(unjudged.event_id)).superseded_as == "unjudged"
    assert of(effects, unjudged, "sampling.correction_unjudged")


# --------------------------------------------------------------------------- whatever the order (a review of the round's diff)


def test_an_announcement_saying_what_the_lab_system_said_still_takes_its_place(rules):
    """Filed as a repeat, the identical announcement left the lab system's report current, and that lab system's
    later passing 'correction' replaced it: 1 passed where the other order gives 1 failed."""
    official = _imported()
    lab = _report(official, COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)  # what the announcement says
    later = _report(lab, COUNTY_LAB, "2023-10-25T09:00:00+08:00")  # the lab system's passing report, later
    for order in ((lab, official, later), (official, lab, later)):
        _, f, _ = fold(rules, *order)
        assert sampled(f) == (1, 0, 1), order
        assert [s.event_id for s in f.final_samples()] == [str(official.event_id)]
        assert f.sample_by_event(str(later.event_id)).superseded_as == "other_lab"


def test_a_lab_systems_failure_stands_beside_an_announcement_nobody_can_judge_in_either_order(rules):
    first = _report(_imported(), COUNTY_LAB, "2023-09-25T09:00:00+08:00", passes=False)
    doc = _report(first, IMPORTER, "2023-10-20T09:00:00+08:00").model_dump(mode="json", exclude_unset=True)
    for item in doc["payload"]["items"]:
        item["unit"] = "furlongs"
    unjudged = parse_event(doc)
    for order in ((first, unjudged), (unjudged, first)):
        _, f, _ = fold(rules, *order)
        assert sampled(f) == (1, 0, 1), order
        assert [s.event_id for s in f.final_samples()] == [str(first.event_id)]
        assert f.sample_by_event(str(unjudged.event_id)).superseded_as == "unjudged"
