"""qrisk's dashboards (zh-CN): the county at a glance, one enterprise's credit file, the intake.

Each is a function returning the Grafana JSON model; ``DASHBOARDS`` names them by file.
``qrisk dashboards export`` writes them to deploy/grafana/dashboards/ (provisioned by the
compose file's Grafana), ``qrisk dashboards publish`` posts them to a running Grafana.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from dashboards.model import (
    BUREAU_TZ,
    CATEGORY_ZH,
    COMPLAINT_CATEGORIES_ZH,
    COMPLAINT_CATEGORY_ZH,
    COMPLAINT_KIND_ZH,
    EFFECTS,
    EVENT_ARCHIVE,
    BARS,
    FORMAT_TIMESERIES,
    NEUTRAL,
    SEVERITY_ZH,
    dashboard,
    data_number,
    data_text,
    data_text_before,
    panel,
    variable,
)

TZ = f"'{BUREAU_TZ}'"


def _local_days(column: str) -> str:
    """A Date column within the time range's days in the bureau's zone.  The plugin's $__dateFilter takes
    the range's UTC dates: a range from 2025-09-29 00:00 +08:00 filtered from 2025-09-28."""
    return f"{column} >= toDate($__fromTime, {TZ}) AND {column} <= toDate($__toTime, {TZ})"


# A sample counts by its conclusion (processors.judgement.SampleJudgement.counted, the rows' `counted`): a failure
# qrisk alone finds, on items and sums the lab's report passed, counts as the report's 合格, as the credit files
# count it; `verdict` keeps qrisk's own judgement
UNCONFIRMED = "(verdict = 'fail' AND counted = 'pass')"
# the mirror: the lab failed an item qrisk passes or finds not applicable, and the report's 不合格 counts (its
# failed_items name that item: SampleJudgement.counted_failed_codes)
LAB_FAILED_PASSED = "(verdict != 'fail' AND counted = 'fail')"
COUNTED = "counted"
# a pass rate over no judged sample is no rate (no data), not 0 % in red
PASS_RATE = f"round(100 * countIf({COUNTED} = 'pass') / nullIf(countIf({COUNTED} IN ('pass', 'fail')), 0), 1)"
# samples count once, with their final verdict (a re-test replaces its original: 031 migration)
FINAL_SAMPLES = "judgements FINAL WHERE superseded_by = ''"
# sampling_items keeps every report's values, those of a report corrected, re-tested or retracted
# too (its rows carry no superseded_by): a value is shown only while its report counts
COUNTING_REPORT = f"event_id IN (SELECT event_id FROM {FINAL_SAMPLES} AND {{where}})"

# a grade is as of the fold's clock (its entry's as_of), not the effect's occurred_at: an event arriving late
# (occurred_at weeks back) regrades the file as of now, after the grades before it
GRADED_AS_OF = f"parseDateTimeBestEffort({data_text('as_of')})"
# the newest grade of each enterprise (risk.graded effects: data is the new grade entry)
CURRENT_GRADES = f"""
    SELECT enterprise_id,
           argMax({data_text('grade')}, (version, idx)) AS grade,
           argMax({data_number('score')}, (version, idx)) AS score,
           argMax({GRADED_AS_OF}, (version, idx)) AS graded_at
    FROM {EFFECTS} WHERE kind = 'risk.graded' GROUP BY enterprise_id"""

# each rectification's state as the credit file holds it (processors.step): overdue is the last of its
# overdue mark and the mark's withdrawal (a completion in time whose record came late); open is the last
# status effect's order or rejection.  Both by the fold's order, not a time range: a rectification overdue
# since last year and still open is overdue now.  (Not "the last of all six is overdue": a late completion
# rejected afterwards is rejected last, yet still overdue and open on file.)
RECTIFICATION_KINDS = "('rectification.ordered', 'rectification.completed', 'rectification.verified', 'rectification.rejected')"
RECTIFICATIONS = f"""
    SELECT enterprise_id, {data_text('rectification_id')} AS rectification_id,
           argMaxIf(kind, (version, idx), kind IN ('rectification.overdue', 'rectification.overdue_withdrawn'))
               = 'rectification.overdue' AS overdue,
           argMaxIf(kind, (version, idx), kind IN {RECTIFICATION_KINDS}) IN ('rectification.ordered', 'rectification.rejected') AS open
    FROM {EFFECTS}
    WHERE kind IN ('rectification.overdue', 'rectification.overdue_withdrawn', 'rectification.ordered', 'rectification.completed',
                   'rectification.verified', 'rectification.rejected')
    GROUP BY enterprise_id, rectification_id"""

# enterprises whose last word on their status is 已注销 (enterprise.updated status: a status changed back is 存续 again)
DEREGISTERED = f"""
    SELECT enterprise_id FROM {EFFECTS} WHERE kind = 'enterprise.status_changed'
    GROUP BY enterprise_id HAVING argMax({data_text('status')}, (version, idx)) = 'deregistered'"""

# enterprises whose licence stands revoked (吊销许可证), as the credit file holds it (processors.step): the last word on
# the licence is a decision revoking it — not that decision's own revocation on review (enforcement.revoked with
# licence_restored, true only once no other revoking decision stands) nor a new licence number (licence_renewed).
# Like the closed, they get no routine sampling or inspection (qrisk risk lists them last, 许可证已吊销).  (penalties is a
# list of kinds, read raw: ClickHouse 18.16 has no JSONExtract)
LICENCE_REVOKED = f"""
    SELECT enterprise_id FROM {EFFECTS}
    WHERE (kind = 'enforcement.decided' AND position(visitParamExtractRaw(data, 'penalties'), '"licence_revoked"') > 0)
       OR (kind = 'enforcement.revoked' AND visitParamExtractBool(data, 'licence_restored'))
       OR (kind IN ('enterprise.registered', 'enterprise.profile_changed') AND visitParamExtractBool(data, 'licence_renewed'))
    GROUP BY enterprise_id HAVING argMax(kind, (version, idx)) = 'enforcement.decided'"""

# enterprises whose last word on their status is 停产: on the register and graded, marked where listed
SUSPENDED = f"""
    SELECT enterprise_id FROM {EFFECTS} WHERE kind = 'enterprise.status_changed'
    GROUP BY enterprise_id HAVING argMax({data_text('status')}, (version, idx)) = 'suspended'"""

REGISTERED = f"SELECT enterprise_id FROM {EFFECTS} WHERE kind = 'enterprise.registered'"
"""Enterprises registered: the campaign's progress table lists these only (a record under an id nobody registered waits)."""

# each field from the latest row that carries it: enterprise.profile_changed names only what changed (a rename
# has no category, a new category no name), so the latest row alone blanked one and a filter on the name kept a stale one
NAMES = f"""
    SELECT enterprise_id, argMaxIf(name, (version, idx), name != '') AS name,
           argMaxIf(category, (version, idx), category != '') AS category
    FROM (SELECT enterprise_id, version, idx, {data_text('name')} AS name, {data_text('category')} AS category
          FROM {EFFECTS} WHERE kind IN ('enterprise.registered', 'enterprise.profile_changed'))
    GROUP BY enterprise_id HAVING name != ''"""

def _top_level(raw: str, depth: int = 4) -> str:
    """A JSON object's text with its nested objects taken out (innermost first, ``depth`` levels), so that a
    key read from it is the object's own: the evidence's event_ids, not a contribution's nested inside it."""
    inner = f"substring({raw}, 2, greatest(length({raw}) - 2, 0))"
    for _ in range(depth):
        inner = f"replaceRegexpAll({inner}, '\\\\{{[^{{}}]*\\\\}}', '')"
    return f"concat('{{', {inner}, '}}')"


# A report the bureau retracted (sampling.retracted: its data's reports are the report event ids, the effects'
# event_id of what they raised).  What it alone raised no longer stands: counts leave it out, tables mark it.
REPORTS_RETRACTED = f"""
    SELECT enterprise_id, arrayJoin(extractAll(visitParamExtractRaw(data, 'reports'), '"([^"]+)"'))
    FROM {EFFECTS} WHERE kind = 'sampling.retracted'"""

# A report the lab corrected (sampling.corrected: corrects_event_id is the report replaced, event_id the correction).
# A report is corrected at most once (its correction is another report, corrected in turn by its own).
CORRECTIONS = f"""
    SELECT enterprise_id, corrects AS event_id, corrected_by
    FROM (SELECT enterprise_id, event_id AS corrected_by, {data_text('corrects_event_id')} AS corrects
          FROM {EFFECTS} WHERE kind = 'sampling.corrected')"""

# warning.raised effects: one per decision.  The evidence's event ids are what the rule read: a warning a
# clock tick raised (a sampling overdue) has the tick as its event and its ground in the evidence.  The fold's
# order is (version, idx) as a tuple: a number version * 1000 + idx misorders an event with 1000 effects or more.
# corrected_by: the correction of the report that raised it, if the lab corrected it since.
EVIDENCE = _top_level("visitParamExtractRaw(data, 'evidence')")
WARNING_EFFECTS = f"""
    SELECT occurred_at, enterprise_id, event_id, version, idx, dedup_key, raised_alert, message, evidence, retest, retracted, corrected_by
    FROM (
        SELECT occurred_at, enterprise_id, event_id, version, idx, {data_text('dedup_key')} AS dedup_key,
               {data_text('alert_id')} AS raised_alert,
               {data_text_before('message_zh', 'occurred_at')} AS message,
               arrayStringConcat(extractAll(visitParamExtractRaw({EVIDENCE}, 'event_ids'), '"([^"]+)"'), ', ') AS evidence,
               visitParamExtractString({EVIDENCE}, 'retest_of') != '' AS retest,
               (enterprise_id, event_id) IN ({REPORTS_RETRACTED}) AS retracted
        FROM {EFFECTS} WHERE kind = 'warning.raised') AS raised
    ANY LEFT JOIN ({CORRECTIONS}) AS corrected USING enterprise_id, event_id"""
# Alerts are one row each in `alerts` (both runtimes write it: the embedded pipeline, and the Kafka workers through
# the sink), with their severity (it only goes up), title and state now.  A dedup key is not an alert: once its
# alert is verified or closed, the key opens a new one (alerts.lifecycle).  A raise names the alert the fold gave
# it (data.alert_id, written by the alerts stage: a late report dated before a closed alert went to the one open
# when it came); effects rows written before that was kept fall back to the alert of its key opened last at or
# before it (opened_at is its opening raise's occurred_at; a raise older than every alert of its key goes to the
# first).  Only columns the Grafana reader is granted: not the alerts' evidence.  closed_note / closed_by: why and by whom it
# was closed, from the step that closed it (migration 051: a supervisor's reason, which no effect carries; "" in rows
# written before it); handling_overdue: acknowledged and escalated for its handling deadline (早处置).
ALERT_LIST = """SELECT enterprise_id, alert_id, group_key AS dedup_key, opened_at, severity, state, title,
                       closing_note AS closed_note, closed_by, handling_overdue FROM alerts FINAL"""
_FALLBACK_ALERT = """if(countIf(opened_at <= occurred_at) > 0, argMaxIf(alert_id, opened_at, opened_at <= occurred_at),
                       argMin(alert_id, opened_at))"""
RAISES_OF_ALERTS = f"""
    SELECT enterprise_id, dedup_key, version, idx, occurred_at, event_id, message, evidence, retracted, retest, corrected_by,
           if(raised_alert != '' AND countIf(alert_id = raised_alert) > 0, raised_alert, {_FALLBACK_ALERT}) AS alert_id
    FROM ({{raises}}) AS raised
    ALL INNER JOIN (SELECT enterprise_id, dedup_key, alert_id, opened_at FROM ({{alerts}})) AS opened USING enterprise_id, dedup_key
    GROUP BY enterprise_id, dedup_key, version, idx, occurred_at, event_id, message, evidence, retracted, retest, corrected_by, raised_alert"""
# A re-test upholding a failure is noted on the failure's alert, not another occurrence of it (alerts.lifecycle:
# evidence.retest_of), unless it opens an alert itself (the failure's was closed): it is then the alert's first raise
RAISES_COUNTED = """
    SELECT * FROM ({raises}) AS raised
    ANY LEFT JOIN (SELECT enterprise_id, alert_id, opened_at FROM ({alerts})) AS opened USING enterprise_id, alert_id
    WHERE NOT retest OR opened_at >= occurred_at"""
# Why an alert closed by itself: the fold's warning.resolved (its ground went away: the report corrected or retracted,
# the failure overturned, the grade fell, the awaited record came, …; note_zh says which) or fluctuation.signal_withdrawn
# (the month's complaints all found 不属实).  The alerts stage names the alert it closed in the effect (data.alert_id,
# "" when none was open); rows written before it did (no alert_id key) fall back, as raises do, to the alert of its key
# opened last at or before it.  A supervisor's closing is no effect: its note comes from the alerts row (closed_note,
# ALERT_LIST); the effects' reason stays the fallback for rows written before the row carried it.
CLOSING_EFFECTS = f"""
    SELECT occurred_at, enterprise_id, event_id, version, idx, {data_text('alert_id')} AS closed_alert,
           position(data, '"alert_id"') > 0 AS named,
           if(kind = 'warning.resolved', {data_text('dedup_key')}, '') AS dedup_key,
           if(kind = 'warning.resolved', {data_text_before('note_zh', 'rule')}, '经核查该月投诉均不属实，信号撤销，预警自动关闭') AS note
    FROM {EFFECTS} WHERE kind IN ('warning.resolved', 'fluctuation.signal_withdrawn')"""
CLOSINGS_OF_ALERTS = f"""
    SELECT enterprise_id, alert_id, argMax(note, (version, idx)) AS closing_note, argMax(event_id, (version, idx)) AS closing_event
    FROM (
        SELECT enterprise_id, version, idx, event_id, any(note) AS note,
               if(named, closed_alert, {_FALLBACK_ALERT}) AS alert_id
        FROM ({{closings}}) AS closing
        ALL LEFT JOIN (SELECT enterprise_id, dedup_key, alert_id, opened_at FROM ({{alerts}})) AS opened USING enterprise_id, dedup_key
        GROUP BY enterprise_id, version, idx, event_id, occurred_at, named, closed_alert)
    WHERE alert_id != ''
    GROUP BY enterprise_id, alert_id"""
# An alert the system closed in the step that corrected the report it was raised on (every raise of it: a lab's typo
# raised the failure, the signal, the grade's rise, and its correction took them back) never stood, as one whose
# every raise was on a report the bureau retracted (a county alert included, which a retraction closes only when it leaves
# the period within its limit): neither is
# counted, both are marked.  One whose failure an admitted re-test overturned did stand until then: counted.
ALERT_CORRECTED = "(state = 'closed' AND corrected_by != '' AND closing_event = corrected_by)"
# Why a closed alert closed: the closing step's note on its row (a supervisor's reason, as 由 李四 关闭：…; the system's own
# as it wrote it), else (a row from before migration 051) the reason of the effect that closed it
ALERT_CLOSING = """if(state = 'closed', multiIf(closed_note = '', closing_note, closed_by = '系统', closed_note,
                                            concat('由 ', closed_by, ' 关闭：', closed_note)), '')"""
ALERT_WITHDRAWN = f"(retracted OR {ALERT_CORRECTED})"
# a county alert (the county's p chart of a category) is kept under the enterprise whose sample tipped it: it is
# the county's, shown as such (as qrisk.sheets' alert sheet says it), not that enterprise's
COUNTY_ALERT = "startsWith(dedup_key, 'county:')"


def _warnings(where: str, when: str) -> str:
    """The alerts (one row each) of the enterprises ``where`` holds (an expression of enterprise_id) raised while
    ``when`` holds (of a raise's occurred_at): the latest such raise's text, event and evidence, how often it was
    raised then, and the alert's id, severity, title and state now.  ``retracted``: every raise of it was on a
    report the bureau retracted; ``withdrawn``: that, or the system closed it when the report it was raised on was
    corrected (``ALERT_WITHDRAWN``); ``closing``: why a closed alert closed (``ALERT_CLOSING``: the system's reason, or a
    supervisor's, naming them)."""
    alerts = f"{ALERT_LIST} WHERE {where}"
    raises = RAISES_OF_ALERTS.format(raises=f"SELECT * FROM ({WARNING_EFFECTS}) WHERE {where}", alerts=alerts)
    closings = CLOSINGS_OF_ALERTS.format(closings=f"SELECT * FROM ({CLOSING_EFFECTS}) WHERE {where}", alerts=alerts)
    return f"""
    SELECT last_at AS occurred_at, enterprise_id, dedup_key, {COUNTY_ALERT} AS county_wide, raises, last_event AS event_id,
           {SEVERITY_ZH.format('severity')} AS severity_zh, title, last_message AS message, last_evidence AS evidence, alert_id,
           retracted, {ALERT_WITHDRAWN} AS withdrawn,
           concat({ALERT_STATE_NOW_ZH},
                  multiIf(retracted, '（触发的报告已撤销）', {ALERT_CORRECTED}, '（触发的报告已更正）', '')) AS state_zh,
           {ALERT_CLOSING} AS closing,
           if(county_wide, concat('县级（由 ', enterprise_id, ' 的抽检触发）'), enterprise_id) AS enterprise,
           if(county_wide, '', enterprise_id) AS credit_file
    FROM (
        SELECT * FROM ({alerts}) AS listed
        ANY LEFT JOIN ({closings}) AS closed USING enterprise_id, alert_id) AS listed
    ANY INNER JOIN (
        SELECT enterprise_id, alert_id, countIf({when}) AS raises, maxIf(occurred_at, {when}) AS last_at,
               argMaxIf(event_id, (version, idx), {when}) AS last_event, argMaxIf(message, (version, idx), {when}) AS last_message,
               argMaxIf(evidence, (version, idx), {when}) AS last_evidence, min(retracted) AS retracted,
               if(min(corrected_by) = max(corrected_by), min(corrected_by), '') AS corrected_by
        FROM ({RAISES_COUNTED.format(raises=raises, alerts=alerts)}) GROUP BY enterprise_id, alert_id HAVING raises > 0) AS raised
    USING enterprise_id, alert_id"""


# a series chart is named by product and item (the item's name: nearby events in the evidence may
# carry names too, hence the key that follows); the p and c charts by what they count and the period
CHART_ZH = "transform({0}, ['p', 'c'], ['抽检不合格率', '投诉数'], {0})"
# A category's p chart is the county's (本县糕点类…): its effect is filed under the enterprise whose sample
# tipped it, but the problem is the county's, so it is shown as such (scope "category"), with that
# enterprise as the trigger.  A detection after a run of non-detects (nd_detected alone: data flag
# "note", and no deeper field is a JSON true named note) is information, not a signal: the credit
# file's series do not count it (Series.signals).
SIGNAL_SCOPE = f"""if({data_text('scope')} = 'category',
                       concat('全县·', {CATEGORY_ZH.format(data_text_before('category', 'center'))}, '类'), '本企业')"""
# A signal no longer stands when the fold withdrew it (fluctuation.signal_withdrawn: every complaint of the
# c chart's month found 不属实, a pass-rate period's failures no longer supporting it; the withdrawal carries the signal's
# chart, scope and period, as the risk score and the alert's dedup key match it), when the bureau retracted the report that
# raised it (sampling.retracted: its data's reports are the report event ids, the signal effect's event_id), or when the lab
# corrected the report whose value an item series signalled on (REPORTS_CORRECTED).  Counts leave it out; tables mark it.
# A withdrawal withdraws the signal of its chart and period that came last before it in the log's order (version, idx):
# the period may signal again after it (a later failure, a failure counted again), and that signal stands — matched by
# chart and period alone, it showed 已撤销 too.  A signal is one effect row: (enterprise_id, version, idx).
_WITHDRAWN_AFTER = "(signal_version < withdrawal_version OR (signal_version = withdrawal_version AND signal_idx < withdrawal_idx))"
_LAST_SIGNAL = "argMax({0}, (signal_version, signal_idx))"
SIGNALS_WITHDRAWN = f"""
    SELECT enterprise_id, {_LAST_SIGNAL.format('signal_version')} AS version, {_LAST_SIGNAL.format('signal_idx')} AS idx
    FROM (SELECT enterprise_id, {data_text('scope')} AS key_scope, {data_text('chart')} AS key_chart, {data_text('period')} AS key_period,
                 version AS withdrawal_version, idx AS withdrawal_idx
          FROM {EFFECTS} WHERE kind = 'fluctuation.signal_withdrawn' AND {data_text('scope')} != 'category'{{only}}) AS withdrawal
    ALL INNER JOIN (
          SELECT enterprise_id, {data_text('scope')} AS key_scope, {data_text('chart')} AS key_chart, {data_text('period')} AS key_period,
                 version AS signal_version, idx AS signal_idx
          FROM {EFFECTS} WHERE kind = 'fluctuation.signal') AS signal USING enterprise_id, key_scope, key_chart, key_period
    WHERE {_WITHDRAWN_AFTER}
    GROUP BY enterprise_id, key_scope, key_chart, key_period, withdrawal_version, withdrawal_idx"""
# (a complaint chart's signal withdrawn because a complaint was withdrawn — filed under the wrong enterprise, registered
# twice: complaint.withdrawn — rather than found 不属实: its withdrawal names the complaint, withdrawn_complaint)
_BY_A_COMPLAINT_WITHDRAWN = f" AND {data_text('withdrawn_complaint')} != ''"
# The county's chart of a category is withdrawn in the file whose failure went (a re-test, a correction, a retraction),
# which need not be the file its signal is kept under (the enterprise that tipped it): matched by category, not
# enterprise, in the log's order across files — the embedded runtime's seq, whose the county's charts alone are
COUNTY_SIGNALS_WITHDRAWN = f"""
    SELECT {_LAST_SIGNAL.format('signal_enterprise')} AS enterprise_id, {_LAST_SIGNAL.format('signal_version')} AS version,
           {_LAST_SIGNAL.format('signal_idx')} AS idx
    FROM (SELECT enterprise_id AS withdrawal_enterprise, {data_text('category')} AS key_category, {data_text('chart')} AS key_chart,
                 {data_text('period')} AS key_period, version AS withdrawal_version, idx AS withdrawal_idx
          FROM {EFFECTS} WHERE kind = 'fluctuation.signal_withdrawn' AND {data_text('scope')} = 'category') AS withdrawal
    ALL INNER JOIN (
          SELECT enterprise_id AS signal_enterprise, {data_text_before('category', 'center')} AS key_category,
                 {data_text('chart')} AS key_chart, {data_text('period')} AS key_period, version AS signal_version, idx AS signal_idx
          FROM {EFFECTS} WHERE kind = 'fluctuation.signal' AND {data_text('scope')} = 'category') AS signal
    USING key_category, key_chart, key_period
    WHERE {_WITHDRAWN_AFTER}
    GROUP BY key_category, key_chart, key_period, withdrawal_enterprise, withdrawal_version, withdrawal_idx"""
# A report the lab corrected (sampling.corrected: corrects_event_id is the report replaced).  The item series it was
# charted on are built again with the corrected values (processors.fluctuation.recharted), so the signals its own
# point raised are gone from the credit file; a corrected value still out of control signals anew, under the
# correction.  The pass-rate (p) charts keep a signal already raised (recounted): those stand.
REPORTS_CORRECTED = f"""
    SELECT enterprise_id, {data_text('corrects_event_id')} FROM {EFFECTS} WHERE kind = 'sampling.corrected'"""
# A baseline point the limits left out, said when a later batch froze them, is about that point's report
# (rests_on_event_ids): withdrawn too when every report it rests on was retracted or corrected (the series is built
# again without them), as when the report that carried it was (what still stands signals anew).
RESTS_ON = "extractAll(visitParamExtractRaw(data, 'rests_on_event_ids'), '\"([^\"]+)\"')"
SIGNALS = f"""
    SELECT occurred_at, enterprise_id, event_id, {SIGNAL_SCOPE} AS scope, {data_text('scope')} = 'category' AS county_wide,
           if(county_wide, (enterprise_id, version, idx) IN ({COUNTY_SIGNALS_WITHDRAWN}),
              (enterprise_id, version, idx) IN ({SIGNALS_WITHDRAWN.format(only='')})) AS unfounded,
           unfounded AND {data_text('chart')} = 'c'
              AND (enterprise_id, version, idx) IN ({SIGNALS_WITHDRAWN.format(only=_BY_A_COMPLAINT_WITHDRAWN)}) AS complaint_withdrawn,
           {RESTS_ON} AS rests_on,
           (enterprise_id, event_id) IN ({REPORTS_RETRACTED})
              OR (notEmpty(rests_on) AND arrayAll(r -> (enterprise_id, r) IN ({REPORTS_RETRACTED}), rests_on)) AS retracted,
           {data_text('series')} != '' AND ((enterprise_id, {data_text_before('sample_event_id', 'sample_no')}) IN ({REPORTS_CORRECTED})
              OR (notEmpty(rests_on) AND arrayAll(r -> (enterprise_id, r) IN ({REPORTS_CORRECTED}), rests_on))) AS corrected,
           unfounded OR retracted OR corrected AS withdrawn,
           multiIf(unfounded AND {data_text('chart')} = 'p', '已撤销（不合格结论经复检、更正或撤销不再计入后，不再构成信号）',
                   complaint_withdrawn, '已撤销（投诉登记已撤回）', unfounded, '已撤销（投诉经核查均不属实）', retracted, '已撤销（触发的报告已撤销）',
                   corrected, '已撤销（触发的报告已更正）', '') AS status,
           match(data, '"note": *true') AS note, if(note, '提示', '信号') AS signal_kind,
           if({data_text('series')} != '', concat({data_text_before('product', ('rebaseline_event_id', 'rule'))}, ' · ', {data_text_before('item_name', 'lcl')}),
              concat({CHART_ZH.format(data_text('chart'))}, ' ', {data_text('period')})) AS series,
           {data_text_before('text_zh', 'ucl')} AS text
    FROM {EFFECTS} WHERE kind = 'fluctuation.signal'"""

# GB 2760 groups whose sum of ratios is judged (the catalogue's sum_of_ratios blocks; a test keeps them equal)
GROUPS_ZH = {"preservative": "防腐剂"}
# SAMR's item name of each group's sum, as the credit file and alerts print it
SUM_ITEMS_ZH = {"preservative": "防腐剂混合使用时各自用量占其最大使用量的比例之和"}

ALERT_STATE_ZH = "transform({0}, ['open', 'acknowledged', 'rectifying', 'verified', 'closed'], ['待处置', '已确认', '整改中', '整改复查通过', '已关闭'], {0})"
# 已确认 is no handling (早处置): one acknowledged and left past warnings.handle_within_hours reads so (the alerts row's
# handling_overdue, set by the fold's escalation for it, by the log's clock as the API has it)
ALERT_STATE_NOW_ZH = f"if(handling_overdue = 1 AND state = 'acknowledged', '已确认超时未处置', {ALERT_STATE_ZH.format('state')})"
# the campaign's stages in their order (processors.campaign.STAGES; a test keeps them equal)
CAMPAIGN_STAGES = ["mobilisation", "tiering", "training", "assistance", "self_improvement", "acceptance"]
STAGE_ORDER = "transform({0}, " + str(CAMPAIGN_STAGES) + ", " + str(list(range(1, len(CAMPAIGN_STAGES) + 1))) + ", 0)"

# where each grade starts (the default policy's risk.bands: a score above a bound, up to the next inclusive, is
# that grade; the dashboards import nothing of ours, so a test keeps them equal)
GRADE_BANDS = {"A": 0.0, "B": 30.0, "C": 45.0, "D": 60.0}
GRADE_COLOUR = {"A": "green", "B": "yellow", "C": "orange", "D": "red"}
# Grafana colours a value from the step it reaches (value >= step): the next float above a bound, so that a
# score of exactly 30 is A's colour as it is A
GRADE_COLOURS = [(None, GRADE_COLOUR["A"])] + [(math.nextafter(GRADE_BANDS[g], math.inf), GRADE_COLOUR[g]) for g in ("B", "C", "D")]
# the grade pie's slices (fields named by the grade) in the grades' colours
GRADE_SLICES = [{"matcher": {"id": "byName", "options": g}, "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]}
                for g, c in GRADE_COLOUR.items()]


def _sum_items_zh(code: str) -> str:
    return f"transform({code}, {list(SUM_ITEMS_ZH)}, {list(SUM_ITEMS_ZH.values())}, concat({_groups_zh(code)}, '比例之和'))"


# each sample's item names by code (sampling_items: one row per item and value), to name a judgements
# row's failed_items; {where} narrows it to the enterprise shown
ITEM_NAMES = """
    SELECT event_id, groupArray(item_code) AS item_codes, groupArray(item_name) AS item_names
    FROM (SELECT event_id, item_code, any(item_name) AS item_name FROM sampling_items FINAL WHERE {where} GROUP BY event_id, item_code)
    GROUP BY event_id"""


def _item_name_zh(code: str, codes: str, names: str) -> str:
    """A failed item's name for people: the sum of ratios by its SAMR name, an item by the name the
    sample's item rows carry (``codes``/``names``: ``item_codes``/``item_names`` of ITEM_NAMES), else its code."""
    at = f"indexOf({codes}, {code})"
    return (f"if(startsWith({code}, 'sum_of_ratios:'), {_sum_items_zh(f'substring({code}, 15)')}, "
            f"if({at} > 0 AND {names}[{at}] != '', {names}[{at}], {code}))")


def _failed_items_zh(failed: str) -> str:
    """A judgements row's failed items named (``_item_name_zh``), joined with 、.  The sample's item
    codes and names reach the lambda as arguments (``replicate``: the row's arrays once per failed
    item): ClickHouse 18.16 does not see a column that a lambda's body names inside a function call
    (``c -> indexOf(item_codes, c)``: "Unknown identifier: item_codes"), joined or from a subquery."""
    return (f"arrayStringConcat(arrayMap((c, sample_codes, sample_names) -> {_item_name_zh('c', 'sample_codes', 'sample_names')}, "
            f"{failed}, replicate(item_codes, {failed}), replicate(item_names, {failed})), '、')")


def _groups_zh(code: str) -> str:
    return f"transform({code}, {list(GROUPS_ZH)}, {list(GROUPS_ZH.values())}, {code})"


# a column of enterprise ids opens that enterprise's credit file (the enterprise board), over the same time range
def _enterprise_link(column: str) -> list[dict[str, Any]]:
    return [{"matcher": {"id": "byName", "options": column}, "properties": [{"id": "links", "value": [
        {"title": "企业诚信档案", "url": "/d/qrisk-enterprise?var-enterprise=${__value.raw}&${__url_time_range}"}]}]}]


ENTERPRISE_LINK = _enterprise_link("企业")
# An alert table's 企业 says 县级（由 X 的抽检触发） for a county alert, and Grafana links a whole column or none of
# it: the credit file's link is on its own column, empty for a county alert (the county's, not X's file)
ALERT_ENTERPRISE_LINK = _enterprise_link("诚信档案")
# every alert, for the alert panels' time range: raised (first or again) within it
ALERTS_RAISED = _warnings("1", "$__timeFilter(occurred_at)")
# every alert ever raised (the alerts not yet settled are a current state, whenever they were raised)
ALERTS_EVER_RAISED = _warnings("1", "1")


# 投诉举报 (the complaints table, migration 053): received and 属实 within the range by the time of receipt; 办理中 and
# 超期未办结 as they are now, whenever received (a 不予受理 is neither: its clocks stopped); 超期办结 by the day it was concluded;
# 不予受理超期 (overdue 受理超期: refused after the 7 working days to decide, a lateness as a late 受理 is) by the time of receipt.
# A withdrawn one counts nowhere, as in the credit file.  其中估算: of those counted against a time limit (open, 超期办结,
# 不予受理超期), the ones whose limits were counted Monday–Friday in a year the calendar lacks (complaints.estimate,
# migration 056): a figure that may change when the year's notice is added must say so.  Categories in the credit
# file's order, 投诉 before 举报
COMPLAINTS_BY_CATEGORY = f"""
    SELECT {COMPLAINT_CATEGORY_ZH.format('category')} AS `类别`, {COMPLAINT_KIND_ZH.format('kind')} AS `类型`,
           countIf(in_range = 1) AS `收到`, countIf(in_range = 1 AND ifNull(verified, 0) = 1) AS `属实`,
           countIf(state = 'open') AS `办理中（当前）`, countIf(ifNull(overdue, '') = '超期未办结') AS `超期未办结（当前）`,
           countIf(late_concluded = 1) AS `超期办结`,
           countIf(in_range = 1 AND ifNull(overdue, '') = '受理超期') AS `不予受理超期`,
           countIf(estimate = 1 AND (state = 'open' OR late_concluded = 1 OR (in_range = 1 AND ifNull(overdue, '') = '受理超期')))
               AS `其中估算`
    FROM (SELECT category, kind, state, verified, overdue, concluded_on, estimate, if($__timeFilter(received_at), 1, 0) AS in_range,
                 if(ifNull(overdue, '') = '超期办结' AND concluded_on IS NOT NULL AND {_local_days('assumeNotNull(concluded_on)')}, 1, 0)
                     AS late_concluded
          FROM complaints FINAL WHERE state != 'withdrawn')
    GROUP BY category, kind
    HAVING `收到` + `办理中（当前）` + `超期办结` + `不予受理超期` > 0
    ORDER BY transform(category, {list(COMPLAINT_CATEGORIES_ZH)}, {list(range(1, len(COMPLAINT_CATEGORIES_ZH) + 1))}, 99), category,
             kind = 'report', kind"""


def county() -> dict[str, Any]:
    panels = [
        panel("stat", "在册企业（当前）", f"SELECT count() AS `企业数` FROM ({NAMES}) WHERE enterprise_id NOT IN ({DEREGISTERED})", w=4, h=4,
              thresholds=NEUTRAL,
              description="已登记（enterprise.registered）且未注销的企业数：当前状态，不随时间范围变化"),
        panel("stat", "抽检批次", f"SELECT count() AS `批次` FROM {FINAL_SAMPLES} AND {_local_days('sampled_on')}", w=4, h=4,
              thresholds=NEUTRAL,
              description="时间范围内按抽样日期计的抽检批次（复检替代原检验，只计一次）"),
        panel("stat", "不合格批次", f"SELECT countIf({COUNTED} = 'fail') AS `不合格` FROM {FINAL_SAMPLES} AND {_local_days('sampled_on')}",
              w=4, h=4, thresholds=[(None, "green"), (1.0, "red")],
              description="按检验结论计的不合格批次；检验报告结论为合格、系统按标准复核判定不合格的批次按合格计，另见预警（系统复核不合格）"),
        panel("stat", "抽检合格率",
              f"SELECT {PASS_RATE} AS `合格率` "
              f"FROM {FINAL_SAMPLES} AND {_local_days('sampled_on')}",
              w=4, h=4, unit="percent", thresholds=[(None, "red"), (90.0, "yellow"), (97.0, "green")],
              description="合格批次 / 已判定批次（无法判定的不计）"),
        panel("stat", "预警", f"SELECT count() AS `预警` FROM ({ALERTS_RAISED}) WHERE NOT withdrawn", w=4, h=4,
              thresholds=[(None, "green"), (1.0, "orange")],
              description="时间范围内触发（首次或再次）的预警数，每个预警计一次：预警办结（复查通过或关闭）后同一问题再次出现为新的预警，另计；"
                          "仅由已撤销的报告触发的预警、因触发它的报告已更正或撤销而自动关闭的预警不计"),
        panel("stat", "整改逾期（当前）", f"SELECT count() AS `逾期` FROM ({RECTIFICATIONS}) WHERE overdue AND open",
              w=4, h=4, thresholds=[(None, "green"), (1.0, "red")],
              description="当前逾期未完成的整改（截至现在逾期未完成，不随时间范围变化）：已超过整改期限（按事件时间；期限遇周末或法定节假日顺延至其后第一个工作日）、尚未完成或复查未通过；"
                          "完成记录晚到、实际在期限内完成的，逾期标记已撤销，不计"),
        panel("timeseries", "月度抽检合格率（分类别）",
              f"""SELECT toDateTime(toStartOfMonth(sampled_on), {TZ}) AS time, {CATEGORY_ZH.format('category')} AS `类别`,
                         {PASS_RATE} AS `合格率`
                  FROM {FINAL_SAMPLES} AND {_local_days('sampled_on')}
                  GROUP BY time, category ORDER BY time, category""",
              w=12, h=8, fmt=FORMAT_TIMESERIES, unit="percent"),
        # one row, a column per grade: a slice is a field, coloured by its name as the grade's colour (a slice per row
        # takes the palette's colours, D in green)
        panel("piechart", "风险等级分布（当前）",
              "SELECT " + ", ".join(f"countIf(grade = '{g}') AS `{g}`" for g in GRADE_COLOUR)
              + f" FROM ({CURRENT_GRADES}) WHERE enterprise_id NOT IN ({DEREGISTERED}) AND enterprise_id NOT IN ({LICENCE_REVOKED})",
              w=6, h=8, options={"reduceOptions": {"values": False, "calcs": ["lastNotNull"]}, "pieType": "donut",
                                 "legend": {"showLegend": True, "displayMode": "list", "placement": "right", "values": ["value"]}},
              overrides=GRADE_SLICES, description="当前各风险等级（A 低 — D 高）的在册企业数，颜色同等级；已注销、已吊销许可证的不计"
                                                  "（不再安排日常抽检和检查，qrisk risk 列于最后）"),
        panel("barchart", "不合格项目排行",
              f"""SELECT if(startsWith(code, 'sum_of_ratios:'), {_sum_items_zh("substring(code, 15)")},
                            if(item_name = '', code, item_name)) AS `项目`, batches AS `不合格批次`
                  FROM (SELECT arrayJoin(failed_items) AS code, count() AS batches FROM {FINAL_SAMPLES}
                        AND {COUNTED} = 'fail' AND {_local_days('sampled_on')} GROUP BY code) AS failures
                  ANY LEFT JOIN (SELECT item_code AS code, any(item_name) AS item_name FROM sampling_items GROUP BY item_code) AS names
                  USING code ORDER BY batches DESC, code LIMIT 15""",
              w=6, h=8, options={"orientation": "horizontal", "xField": "项目"},
              description="各检验项目的不合格批次（帕累托）：先查最多的原因"),
        # the labs' time limits (sampling_turnaround): one row per sample and lab (a report retracted from the wrong
        # enterprise and filed again under the right one by its lab is one sample, not two; the contract makes a 抽样编号
        # unique within one enterprise only, so two enterprises' samples of one number by two labs stay apart) whose
        # first report was judged for them (a correction carries the same figures; a re-test is not judged); 其中估算: the
        # batches whose working days were counted Monday–Friday in a year the calendar lacks (migration 056)
        panel("table", "检验机构报告时限",
              f"""SELECT lab AS `检验机构`, count() AS `批次`, countIf(late = 1) AS `超时批次`,
                         round(100 * countIf(late = 1) / count(), 1) AS `超时比例（%）`,
                         max(days) AS `最长（工作日）`, round(avg(days), 1) AS `平均（工作日）`,
                         countIf(estimate = 1) AS `其中估算`
                  FROM (SELECT sample_no, lab, argMin(turnaround_late, occurred_at) AS late,
                               argMin(report_working_days, occurred_at) AS days,
                               argMin(turnaround_estimate, occurred_at) AS estimate
                        FROM judgements FINAL WHERE report_working_days IS NOT NULL AND {_local_days('sampled_on')}
                        GROUP BY sample_no, lab)
                  GROUP BY lab ORDER BY `超时批次` DESC, `检验机构`""",
              w=12, h=6,
              description="时间范围内按抽样日期计，各承检机构的检验报告时限（《食品安全抽样检验管理办法》：收样后 20 个工作日内出具报告，"
                          "抽样后 5 个工作日内送达；未报收样日期的按抽样日期起算 5+20 个工作日；与检验机构另有约定的按约定，见策略 "
                          "sampling_turnaround）：超时批次含送样超时，最长、平均为出具报告所用工作日（自收样日，未报收样日期的自抽样日）。"
                          "其中估算为所计工作日含工作日历未收录的年份、按周一至周五估算的批次，补入该年国务院放假安排后重算（qrisk rebuild）可能改变。"
                          "属承检机构履约情况，不计入企业风险分；复检不计；明细见 GET /v1/samples?late=true"),
        panel("table", "投诉举报", COMPLAINTS_BY_CATEGORY, w=12, h=9,
              description="按投诉类别和类型（投诉 / 举报）：收到为时间范围内收到的件数（不予受理的也计），属实为其中经核查属实的；"
                          "办理中、超期未办结为当前状态，不论何时收到（不予受理的不在办理中；超期未办结：仍在计算的法定办理时限已超过仍未办结，受理决定晚于期限而调解未超期的仍为办理中；按工作日计，默认投诉 7 个工作日内决定受理、"
                          "受理后 45 个工作日内办结调解，举报 15 个工作日内核查、经批准可延长 15 个工作日，见策略 complaint_deadlines）；"
                          "超期办结为时间范围内办结、办结晚于期限的件数；不予受理超期为时间范围内收到、超过受理期限才作出不予受理决定的件数"
                          "（法定 7 个工作日内应决定受理或不予受理，晚于期限的不予受理与受理超期同样计为超期）。"
                          "其中估算为办理中、超期办结、不予受理超期所计件数中，办理时限含工作日历未收录的年份、按周一至周五估算的件数，"
                          "补入该年国务院放假安排后重算（qrisk rebuild）可能变为按期或超期。已撤回的（登记错企业或重复登记）不计。"
                          "属监管部门自身的办理时限，不计入企业风险分；明细见 GET /v1/complaints"),
        panel("table", "C/D 级企业（当前）",
              f"""SELECT enterprise_id AS `企业`, if(enterprise_id IN ({SUSPENDED}), concat(name, '（停产）'), name) AS `名称`,
                         {CATEGORY_ZH.format('category')} AS `类别`, grade AS `等级`,
                         score AS `风险分`, graded_at AS `评定时间`
                  FROM ({CURRENT_GRADES}) AS grades ANY LEFT JOIN ({NAMES}) AS names USING enterprise_id
                  WHERE grade IN ('C', 'D') AND enterprise_id NOT IN ({DEREGISTERED}) AND enterprise_id NOT IN ({LICENCE_REVOKED})
                  ORDER BY grade DESC, score DESC, enterprise_id""",
              overrides=ENTERPRISE_LINK, w=12, h=9,
              description="当前等级为 C 或 D 的在册企业，风险分从高到低：当前状态，不随时间范围变化。已注销、已吊销许可证的不列"
                          "（不再安排日常抽检和检查；许可证经复议、诉讼撤销吊销决定或换发新证后重新列入）；停产的列出并在名称后注明"
                          "（停产）：停产期间不安排日常抽检"),
        panel("table", "最新预警",
              f"""SELECT occurred_at AS `时间`, enterprise AS `企业`, severity_zh AS `级别`, title AS `预警`, state_zh AS `状态`,
                         closing AS `关闭原因`, message AS `说明`, raises AS `触发次数`, alert_id AS `预警编号`, event_id AS `触发事件`,
                         evidence AS `证据事件`, credit_file AS `诚信档案`
                  FROM ({ALERTS_RAISED}) ORDER BY occurred_at DESC, event_id, alert_id LIMIT 200""",
              overrides=ALERT_ENTERPRISE_LINK, w=12, h=9,
              description="时间范围内触发的预警，每个预警一行，最多列最近触发的 200 条（全部见 GET /v1/alerts）"
                          "（时间范围内再次触发计入触发次数，时间、说明为其中最近一次；办结后同一问题再次出现为新的预警，另占一行）；"
                          "级别为预警现在的级别（只升不降），状态为预警现在的处置状态，“触发的报告已撤销”：触发它的检验报告均已撤销，"
                          "“触发的报告已更正”：因检验机构更正报告而自动关闭，两者均不计入预警数；"
                          "“已确认超时未处置”：已确认，但超过处置期限仍未责令整改或关闭，已升级通报；"
                          "关闭原因为系统自动关闭的原因，或人工关闭时填写的理由（由 某某 关闭：理由；处置经过见 GET /v1/alerts/{编号}）；"
                          "企业“县级（由 X 的抽检触发）”为全县该类别的预警，不是 X 自身的问题；"
                          "触发事件为最近一次触发它的事件（时钟检查触发的为时钟事件），证据事件为规则所依据的事件，可在企业诚信档案中查看"),
        panel("timeseries", "质量波动信号（每周）",
              f"""SELECT toDateTime(toMonday(occurred_at, {TZ}), {TZ}) AS time, count() AS `信号数` FROM ({SIGNALS})
                  WHERE NOT note AND NOT withdrawn AND $__timeFilter(occurred_at) GROUP BY time ORDER BY time""",
              w=12, h=7, fmt=FORMAT_TIMESERIES, options={"legend": {"showLegend": False}}, custom=BARS,
              description="每周的质量波动信号数（未检出后检出“仅作提示”的不计，与诚信档案相同；"
                          "已撤销的信号——该月投诉经核查均不属实、触发信号的报告已撤销或已更正、抽检不合格率信号（含全县·类别）的不合格结论不再计入后不再构成信号（未超出控制上限，或全县·类别的不合格批次来自的企业数不足）——不计；撤销后同一期间再次出现的信号照常计入）"),
        panel("table", "最新质量波动信号",
              f"""SELECT occurred_at AS `时间`, scope AS `范围`,
                         if(county_wide, concat('由 ', enterprise_id, ' 的抽检触发'), enterprise_id) AS `企业`,
                         series AS `产品与项目`, signal_kind AS `类型`, text AS `信号`, status AS `状态`, event_id AS `事件`
                  FROM ({SIGNALS}) WHERE $__timeFilter(occurred_at) ORDER BY occurred_at DESC, event_id LIMIT 100""",
              w=12, h=7, description="时间范围内最近的 100 个信号（最多列 100 条）；"
                                     "范围“全县·类别”为全县该类别的抽检不合格率，不是触发企业自身的问题；类型“提示”：以往未检出、本批检出，不计为信号；"
                                     "状态“已撤销”：该月投诉经核查均不属实，或触发信号的报告已撤销或已更正（更正后的结果仍异常的，另计为更正报告的信号），"
                                     "或抽检不合格率信号（含全县·类别）的不合格结论经复检、更正或撤销不再计入后不再构成信号（未超出控制上限，或全县·类别的不合格批次来自的企业数不足），不再计入；撤销后同一期间再次出现的信号（又有批次不合格，或不合格结论恢复计入）是新的信号，照常计入"),
        # (updated_at moves with the system's own steps too, repeats and escalations: not a supervisor's last step)
        panel("table", "未办结预警（当前）",
              f"""SELECT opened_at AS `生成时间`, alert_id AS `预警编号`,
                         if({COUNTY_ALERT.replace('dedup_key', 'group_key')}, concat('县级（由 ', enterprise_id, ' 的抽检触发）'), enterprise_id) AS `企业`,
                         {SEVERITY_ZH.format('severity')} AS `级别`, title AS `预警`,
                         concat({ALERT_STATE_NOW_ZH}, if(retracted, '（触发的报告已撤销）', '')) AS `状态`,
                         assignee AS `负责人`, updated_at AS `最近更新`,
                         if({COUNTY_ALERT.replace('dedup_key', 'group_key')}, '', enterprise_id) AS `诚信档案`
                  FROM (SELECT enterprise_id, alert_id, group_key, opened_at, severity, title, state, assignee, updated_at, handling_overdue
                        FROM alerts FINAL
                        WHERE state IN ('open', 'acknowledged', 'rectifying')) AS active
                  ANY LEFT JOIN (SELECT enterprise_id, alert_id, retracted FROM ({ALERTS_EVER_RAISED})) AS raised USING enterprise_id, alert_id
                  ORDER BY opened_at DESC, alert_id LIMIT 200""",
              overrides=ALERT_ENTERPRISE_LINK, w=12, h=9,
              description="尚未办结（待处置、已确认、整改中）的预警，不论何时触发（当前状态，不随时间范围变化）；"
                          "最多列最近生成的 200 条，全部见 GET /v1/alerts?state=active。"
                          "确认、整改、关闭见 POST /v1/alerts/{编号}/actions。"
                          "最近更新为预警最近一次变化的时间（含系统的再次触发、超时升级），不一定是人工处置的时间。"
                          "“已确认超时未处置”：已确认，但超过处置期限（策略 warnings.handle_within_hours）仍未责令整改或关闭，已升级通报。"
                          "“触发的报告已撤销”：触发它的检验报告均已由监管部门撤销，不计入预警数；县级预警不随撤销自动关闭"
                          "（全县该类别的抽检不合格率可能仍然偏高），请核实后关闭"),
        panel("barchart", "提档升级：各阶段完成企业数（当前）",
              # an enterprise counts where its last word on the stage is not campaign.stage_lost (an acceptance
              # a later failed one reversed, a record retracted); registered enterprises only, as the progress table
              f"""SELECT any(stage_zh) AS `阶段`, countIf(last_kind != 'campaign.stage_lost') AS `企业数`
                  FROM (SELECT enterprise_id, {data_text('stage')} AS stage, any({data_text('stage_zh')}) AS stage_zh,
                               argMax(kind, (version, idx)) AS last_kind
                        FROM {EFFECTS} WHERE kind IN ('campaign.stage_reached', 'campaign.stage_redated', 'campaign.stage_lost')
                                         AND enterprise_id IN ({REGISTERED})
                        GROUP BY enterprise_id, stage)
                  GROUP BY stage HAVING `企业数` > 0 ORDER BY {STAGE_ORDER.format('stage')}""",
              w=12, h=9, options={"orientation": "horizontal", "xField": "阶段"},
              description="宣传发动、调查分档、培训观摩、帮扶指导、自我提升（三个一）、检查验收：现已完成该阶段的已登记企业数，与进度表一致"
                          "（当前进度，不随时间范围变化；进度表：GET /v1/campaign；未登记企业编号下的提档升级记录待企业登记后计入）"),
    ]
    return dashboard("qrisk-county", "县域食品质量风险总览", panels, time_from="now-1y",
                     description="抽检、合格率、风险分级、早期预警和质量波动：全县一览（早发现、早预警）")


def _text_variable(name: str) -> str:
    """A text template variable as one ClickHouse string, whatever a viewer sets it to.  The plugin pastes a
    value as it is (``?var-enterprise=x' UNION ALL SELECT …`` ran), and Grafana's quoting formats (sqlstring,
    singlequote) leave a backslash as it is, which ClickHouse reads as an escape: ``x\\' OR 1 --`` breaks out of
    their quotes.  Percent-encoded, the value holds only letters, digits, ``%`` and ``-_.~``.  (Single-valued:
    a multi-value percent-encodes as ``{a,b}``.)"""
    return f"decodeURLComponent('${{{name}:percentencode}}')"


ENTERPRISE = _text_variable("enterprise")
ITEM = _text_variable("item")


def enterprise() -> dict[str, Any]:
    where = f"enterprise_id = {ENTERPRISE}"
    # the enterprise's own alerts: a county alert it tipped is the county's
    own_alerts = f"SELECT * FROM ({_warnings(where, '$__timeFilter(occurred_at)')}) WHERE NOT county_wide"
    panels = [
        # a text value: shown only when the stat reads its field (by default it reads numbers), coloured by its mapping
        panel("stat", "当前风险等级", f"SELECT grade AS `等级` FROM ({CURRENT_GRADES}) WHERE {where}", w=6, h=4,
              options={"colorMode": "background", "textMode": "value",
                       "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": "/^等级$/"}},
              mappings=GRADE_COLOUR, thresholds=NEUTRAL, description="A 低风险、B 一般、C 较高、D 高风险（颜色同风险分）"),
        panel("stat", "当前风险分", f"SELECT score AS `风险分` FROM ({CURRENT_GRADES}) WHERE {where}", w=6, h=4, thresholds=GRADE_COLOURS),
        panel("stat", "抽检合格率",
              f"SELECT {PASS_RATE} AS `合格率` "
              f"FROM {FINAL_SAMPLES} AND {where} AND {_local_days('sampled_on')}",
              w=6, h=4, unit="percent", thresholds=[(None, "red"), (90.0, "yellow"), (97.0, "green")]),
        panel("stat", "预警数", f"SELECT count() AS `预警` FROM ({own_alerts}) WHERE NOT withdrawn", w=6, h=4,
              thresholds=[(None, "green"), (1.0, "orange")],
              description="时间范围内触发（首次或再次）的本企业预警数，每个预警计一次（办结后再次出现的为新预警）；"
                          "由本企业抽检触发的县级预警不计；仅由已撤销的报告触发的预警、因触发它的报告已更正或撤销而自动关闭的预警不计"),
        panel("timeseries", "风险分变化",
              f"""SELECT {GRADED_AS_OF} AS time, {data_number('score')} AS `风险分` FROM {EFFECTS}
                  WHERE kind = 'risk.graded' AND {where} AND $__timeFilter(time) ORDER BY time, version, idx""",
              w=12, h=8, fmt=FORMAT_TIMESERIES, thresholds=GRADE_COLOURS,
              # a score holds until the next grading: steps, not a slope between gradings; the bands drawn behind it
              custom={"drawStyle": "line", "lineInterpolation": "stepAfter", "showPoints": "always", "pointSize": 5,
                      "thresholdsStyle": {"mode": "area"}},
              description="各次评定的风险分（按评定时的折叠时钟），保持到下次评定；背景色为等级区间："
                          + "、".join(f"{g} {'≤' + format(GRADE_BANDS[n], 'g') if n else '>' + format(GRADE_BANDS[g], 'g')}"
                                     for g, n in zip(GRADE_BANDS, [*list(GRADE_BANDS)[1:], None])),
              options={"legend": {"showLegend": False}}),
        # sampling_items keeps an ND as NULL and no detection limit, so a batch not detected has no point
        # here; the control charts place it at half the limit the lab gave (processors.fluctuation)
        panel("timeseries", "检测值：${item:text}",
              # the unit as the series (a text column is a label in the plugin's time-series format): values reported
              # in another unit are another series, not points on one scale
              f"""SELECT toDateTime(sampled_on, {TZ}) AS time, if(unit = '', '检测值', concat('检测值（', unit, '）')) AS `系列`,
                         max(value) AS `检测值` FROM sampling_items FINAL
                  WHERE {where} AND item_code = {ITEM} AND {_local_days('sampled_on')}
                    AND {COUNTING_REPORT.format(where=where)}
                  GROUP BY time, `系列` ORDER BY time, `系列`""",
              w=12, h=8, fmt=FORMAT_TIMESERIES, display_name="${__field.labels.系列}",
              description="每批次取 n 个样品中检出值的最大值（有检出时即质量波动监测所用的值），图例为检验报告所用的单位"
                          "（以不同单位报告的，分列为不同的系列）。各样品均未检出（ND）的批次为空值，"
                          "图中不画点；质量波动监测则按检出限的一半计入，本图无检出限数据，未作此替代。"
                          "已更正、已复检或已撤销的报告不画点，只画仍计入统计的报告（更正后的报告、复检结果）",
              options={"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"}}),
        # a judgements row names the failed items by code (the report's 不合格 items qrisk passes among them): their
        # names are the sample's own item rows'
        panel("table", "抽检记录",
              # (as text: a Date reaches Grafana as midnight UTC, shown 08:00 in the bureau's zone)
              f"""SELECT toString(sampled_on) AS `抽样日期`, sample_no AS `抽样编号`, product AS `产品`,
                         multiIf({UNCONFIRMED}, '合格（系统复核不合格，待与检验机构核实）',
                                 {LAB_FAILED_PASSED}, '不合格（检验报告结论，系统复核为合格或不适用，待与检验机构核实）',
                                 transform(verdict, ['pass', 'fail', 'undetermined'], ['合格', '不合格', '无法判定'], verdict)) AS `结论`,
                         {_failed_items_zh('failed_items')} AS `不合格项目`, event_id AS `事件`
                  FROM (SELECT event_id, sampled_on, sample_no, product, verdict, counted, failed_items FROM {FINAL_SAMPLES}
                        AND {where} AND {_local_days('sampled_on')}) AS samples
                  ANY LEFT JOIN ({ITEM_NAMES.format(where=where)}) AS names USING event_id
                  ORDER BY sampled_on DESC, event_id""",
              w=24, h=8),
        panel("table", "预警记录",
              f"""SELECT occurred_at AS `时间`, severity_zh AS `级别`, title AS `预警`, state_zh AS `状态`, closing AS `关闭原因`,
                         message AS `说明`, raises AS `触发次数`, alert_id AS `预警编号`, event_id AS `触发事件`, evidence AS `证据事件`
                  FROM ({own_alerts}) ORDER BY occurred_at DESC, event_id, alert_id""",
              w=12, h=8, description="时间范围内触发的本企业预警，每个预警一行；级别、状态为现在的（“触发的报告已撤销”：触发它的检验报告均已撤销；"
                                     "“触发的报告已更正”：因检验机构更正报告而自动关闭；两者均不计入预警数）。"
                                     "“已确认超时未处置”：已确认，但超过处置期限仍未责令整改或关闭，已升级通报。"
                                     "关闭原因为系统自动关闭的原因，或人工关闭时填写的理由（由 某某 关闭：理由；处置经过见 GET /v1/alerts/{编号}）。"
                                     "由本企业抽检触发的县级预警是全县该类别的，不在此列（见总览的最新预警）"),
        panel("table", "质量波动信号",
              f"""SELECT occurred_at AS `时间`, scope AS `范围`, series AS `产品与项目`, signal_kind AS `类型`, text AS `信号`,
                         status AS `状态`, event_id AS `事件`
                  FROM ({SIGNALS}) WHERE {where} AND $__timeFilter(occurred_at) ORDER BY occurred_at DESC, event_id""",
              w=12, h=8, description="范围“全县·类别”：由本企业抽检触发的全县该类别信号，不是本企业自身的问题；类型“提示”不计为信号；"
                                     "状态“已撤销”：该月投诉经核查均不属实，或触发信号的报告已撤销或已更正（更正后的结果仍异常的，另计为更正报告的信号），"
                                     "或抽检不合格率信号（含全县·类别）的不合格结论经复检、更正或撤销不再计入后不再构成信号（未超出控制上限，或全县·类别的不合格批次来自的企业数不足），不再计入；撤销后同一期间再次出现的信号（又有批次不合格，或不合格结论恢复计入）是新的信号，照常计入"),
    ]
    variables = [
        # the plugin takes a variable's first column as its value and the second as the text shown
        variable("enterprise", "企业", f"SELECT enterprise_id, concat(enterprise_id, ' ', name) FROM ({NAMES}) ORDER BY enterprise_id"),
        # the code is the value the panels filter by, the item's name (as the lab reported it) the text shown
        variable("item", "检验项目",
                 f"SELECT item_code, if(any(item_name) = '', item_code, any(item_name)) AS item_name FROM sampling_items "
                 f"WHERE enterprise_id = {ENTERPRISE} AND value IS NOT NULL "
                 f"AND {COUNTING_REPORT.format(where=f'enterprise_id = {ENTERPRISE}')} GROUP BY item_code ORDER BY item_code"),
    ]
    return dashboard("qrisk-enterprise", "企业诚信档案", panels, variables=variables, time_from="now-2y",
                     description="一家企业的风险等级、抽检、预警和质量波动，每一项都可追到事件")


# event types by their Chinese names (schemas.events.EVENT_TYPE_ZH; a test keeps them equal)
EVENT_TYPE_ZH = {
    "enterprise.registered": "企业登记", "enterprise.updated": "企业信息变更", "sampling.result": "抽检结果",
    "sampling.retracted": "撤销报告",
    "complaint.received": "投诉登记", "complaint.resolved": "投诉办结", "complaint.accepted": "受理决定", "complaint.withdrawn": "撤回投诉登记", "fluctuation.rebaselined": "控制限重新确定", "inspection.completed": "现场检查",
    "rectification.ordered": "责令整改", "rectification.completed": "整改完成", "rectification.verified": "整改复查",
    "enforcement.decided": "行政处罚", "enforcement.revoked": "撤销行政处罚",
    "enforcement.listing_removed": "提前移出严重违法失信名单", "interview.held": "约谈", "campaign.commitment": "承诺书", "campaign.assessment": "分档与验收", "campaign.training": "培训考试",
    "campaign.activity": "提档升级活动", "campaign.retracted": "撤销提档升级记录", "alert.action": "预警处置", "clock.tick": "时钟",
}
EVENT_TYPE_LABEL = f"transform(event_type, {list(EVENT_TYPE_ZH)}, {list(EVENT_TYPE_ZH.values())}, event_type)"

# each notification's newest attempt (deliveries: one row per attempt; alerts.outbox).  Not narrowed by the
# time range: a notification that gave up 8 days ago still needs handling today (a current state)
# attempts made: a `requeued` row (qrisk alerts redeliver) takes the next attempt number but sends nothing
LATEST_DELIVERIES = """
    SELECT delivery_id, any(alert_id) AS alert_id, any(enterprise_id) AS enterprise_id, any(receiver) AS receiver,
           any(channel) AS channel, sum(made) AS attempts, max(at) AS last_at,
           argMax(status, attempt) AS status, argMax(error, attempt) AS error
    FROM (SELECT delivery_id, alert_id, enterprise_id, receiver, channel, attempt, at, status, error,
                 status != 'requeued' AS made FROM deliveries FINAL)
    GROUP BY delivery_id"""
# A rebuild of the derived tables (qrisk rebuild, a new fold version, a Kafka refold) records the notifications it
# derives again about past steps, or no longer makes, as not sent: `failed`, its error beginning so
# (alerts.outbox._WITHHELD; the dashboards import nothing of ours, a test keeps them equal).  A decision, not a
# receiver's failure: the dispatcher's health and `qrisk alerts redeliver` skip them, and so do these panels.
WITHHELD_BY_REBUILD = "重建派生表"
UNDELIVERED = f"status != 'sent' AND NOT (status = 'failed' AND startsWith(error, '{WITHHELD_BY_REBUILD}'))"
# dead letters by channel (qrisk.api Channel): processing ones were accepted, the fold failed on them
DEAD_LETTER_CHANNEL_ZH = ("transform({0}, ['http', 'import', 'kafka', 'processing', 'sink'], "
                          "['拒收（HTTP）', '拒收（文件导入）', '拒收（Kafka）', '处理失败（已接收）', '拒收（入库）'], {0})")
# A dead letter settled by a copy of its event accepted since (qrisk.api SETTLEABLE and _settled_where, which a test
# keeps equal): the log of either runtime holds its event_id, received at or after the letter (a copy logged before it is
# what its content was refused beside, no cure), and it is a letter a copy can settle — not a processing
# failure (the fold failed on the logged event itself), not a sink's, not an event_id_conflict (a correction needs a
# new id).  Letters kept before dead_letters.event_id have none: outstanding.
_LETTER_IDS = "(SELECT event_id FROM dead_letters WHERE event_id != '')"
_COPY_MS = "toUInt64(received_at) * 1000 + received_ms"
LETTER_SETTLED = ("(event_id != '' AND channel NOT IN ('processing', 'sink') AND position(errors, '\"event_id_conflict\"') = 0 "
                  "AND dead_letter_id IN (SELECT d.dead_letter_id FROM dead_letters AS d INNER JOIN "
                  f"(SELECT event_id, max({_COPY_MS}) AS last_ms FROM (SELECT event_id, received_at, received_ms FROM event_log "
                  f"WHERE event_id IN {_LETTER_IDS} UNION ALL SELECT event_id, received_at, received_ms FROM events WHERE event_id IN "
                  f"{_LETTER_IDS}) GROUP BY event_id) AS copy ON d.event_id = copy.event_id "
                  "WHERE copy.last_ms >= toUInt64(d.received_at) * 1000 + d.received_ms))")
DELIVERY_ZH = "transform({0}, ['sent', 'retry', 'failed', 'requeued'], ['已送达', '重试中', '失败', '已重新排队'], {0})"
# A dead letter's field errors (its errors column: a JSON list of {field, type, reason, reason_zh, …}, written with ": "),
# each as 字段：中文原因.  Each object is matched whole (strings may hold braces), its texts read by pattern and
# unescaped as data_text_before does (no JSONExtract on 18.16); the lambda names its argument only (18.16).
def _error_text(error: str, key: str) -> str:
    """The text of ``key`` in ``error``, one field error's JSON object, unescaped ('' when it has none)."""
    raw = f"extract({error}, '\"{key}\": *\"((?:[^\"\\\\\\\\]|\\\\\\\\.)*)\"')"
    return f"visitParamExtractString(concat('{{\"v\":\"', {raw}, '\"}}'), 'v')"


_ERROR_OBJECTS = "extractAll(errors, '\\\\{(?:[^{}\"]|\"(?:[^\"\\\\\\\\]|\\\\\\\\.)*\")*\\\\}')"
_REASONS_ZH = (f"arrayFilter(x -> x != '', arrayMap(o -> if({_error_text('o', 'reason_zh')} = '', '', "
               f"concat(if({_error_text('o', 'field')} = '', '', concat({_error_text('o', 'field')}, '：')), {_error_text('o', 'reason_zh')})), "
               f"{_ERROR_OBJECTS}))")


def intake() -> dict[str, Any]:
    panels = [
        # clock.tick is the system's own clock, not pushed by labs or inspectors
        panel("stat", "接收事件", f"SELECT count() AS `事件` FROM {EVENT_ARCHIVE} WHERE event_type != 'clock.tick' AND $__timeFilter(received_at)",
              w=6, h=4, thresholds=NEUTRAL, description="实验室、投诉、检查等系统推送的事件数（不含系统自身的时钟事件 clock.tick）"),
        # a processing dead letter is an event accepted and logged that the fold failed on: not refused input.  A refusal
        # whose event was sent again fixed and accepted is history, not work: counted apart, in green
        panel("stat", "拒收记录",
              f"SELECT countIf(channel != 'processing' AND NOT settled) AS `待处理`, countIf(settled) AS `已重新提交并接收`, "
              f"countIf(channel = 'processing') AS `处理失败` "
              f"FROM (SELECT channel, {LETTER_SETTLED} AS settled FROM dead_letters FINAL WHERE $__timeFilter(received_at))", w=6, h=4,
              thresholds=[(None, "green"), (1.0, "red")],
              overrides=[{"matcher": {"id": "byName", "options": "已重新提交并接收"},
                          "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}}]}],
              description="待处理：被拒收、尚未处理的输入（原样保存，附原因，不会丢失），需发送方改正后重新提交；"
                          "已重新提交并接收：发送方已将改正后的同一事件（同一 event_id）重新提交并被接收，无需再处理；"
                          "处理失败：已接收入库、但处理（计算信用档案）出错的事件，需排查。"
                          "event_id 冲突（同一 event_id 内容不同）不会因原事件已入库而视为已处理：更正须使用新的 event_id"),
        # (qrisk run and qrisk tick write a clock.tick every 600 s: counted, intake would look fresh while nothing came)
        # (a stat reads numbers: epoch milliseconds, shown by the unit as a time; none received, no value)
        panel("stat", "最近接收",
              f"SELECT nullIf(toUInt64(max(received_at)) * 1000, 0) AS `最近接收` FROM {EVENT_ARCHIVE} WHERE event_type != 'clock.tick'",
              w=6, h=4, unit="dateTimeAsLocal", thresholds=NEUTRAL,
              description="最近一次收到实验室、投诉、检查等系统推送的事件的时间（不含系统自身的时钟事件 clock.tick）"),
        panel("stat", "预警通知发送失败（当前）", f"SELECT count() AS `失败` FROM ({LATEST_DELIVERIES}) WHERE status = 'failed' AND {UNDELIVERED}",
              w=6, h=4, thresholds=[(None, "green"), (1.0, "red")],
              description="最后一次尝试为失败的预警通知（接收方拒收、地址或密钥有误、重试次数用尽）：需人工处理。"
                          "重建派生表时按历史数据或不再产生而未发送的通知不是发送失败，不计。当前状态，不随时间范围变化"),
        panel("timeseries", "每小时接收事件（按类型）",
              f"""SELECT toStartOfHour(received_at) AS time, {EVENT_TYPE_LABEL} AS `类型`, count() AS `事件`
                  FROM {EVENT_ARCHIVE} WHERE event_type != 'clock.tick' AND $__timeFilter(received_at) GROUP BY time, event_type ORDER BY time, event_type""",
              w=24, h=8, fmt=FORMAT_TIMESERIES, custom={**BARS, "stacking": {"mode": "normal"}},
              description="每小时接收的事件数，按类型（不含系统自身的时钟事件 clock.tick，与“接收事件”相同）"),
        panel("table", "未处理的拒收记录",
              f"""SELECT received_at AS `时间`, {DEAD_LETTER_CHANNEL_ZH.format('channel')} AS `渠道`, position AS `位置`,
                         if(notEmpty(reasons_zh), arrayStringConcat(reasons_zh, '；'), reason) AS `原因`,
                         if(raw_preview = '', '（迁移 057 之前的记录，无预览：原始内容请经 API 查看）', raw_preview) AS `原始内容`,
                         reason AS `原因（英文）`
                  FROM (SELECT received_at, channel, position, reason, raw_preview, dead_letter_id, {_REASONS_ZH} AS reasons_zh
                        FROM dead_letters FINAL WHERE $__timeFilter(received_at) AND NOT {LETTER_SETTLED})
                  ORDER BY received_at DESC, dead_letter_id LIMIT 200""",
              w=24, h=10, description="尚待处理的被拒收输入（原样保存，附原因，不会丢失）与处理失败的事件，最多列最近 200 条；"
                                      "已重新提交并接收的（改正后的同一事件已入库）不列，计入“拒收记录”的“已重新提交并接收”；"
                                      "原因为各字段的中文说明（字段：原因），原因（英文）为发送方收到的英文说明；"
                                      "原始内容为输入的前 300 个字符，其中的姓名、电话、身份证号等个人信息已遮蔽（完整原文经 API 查看）"),
        panel("table", "未送达的预警通知（当前）",
              f"""SELECT last_at AS `最近尝试`, alert_id AS `预警编号`, enterprise_id AS `企业`, receiver AS `接收方`, channel AS `渠道`,
                         attempts AS `尝试次数`, {DELIVERY_ZH.format('status')} AS `状态`, error AS `原因`
                  FROM ({LATEST_DELIVERIES}) WHERE {UNDELIVERED} ORDER BY last_at DESC, delivery_id LIMIT 200""",
              overrides=ENTERPRISE_LINK, w=24, h=8, description="重试中或已失败的通知，附接收方的答复，最多列最近尝试的 200 条；"
                                     "每次尝试见 GET /v1/alerts/{编号}。"
                                     "当前状态，不随时间范围变化（多日前已放弃的通知仍需处理）。"
                                     "重建派生表时按历史数据或不再产生而未发送的通知不列（系统的决定，不是发送失败，也不会重发）"),
    ]
    return dashboard("qrisk-intake", "数据接入", panels, time_from="now-7d", refresh="30s",
                     description="实验室、投诉、检查系统推送的事件、被拒收的输入（拒收记录，即死信），以及预警通知的发送")


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "county.json": county,
    "enterprise.json": enterprise,
    "intake.json": intake,
}
