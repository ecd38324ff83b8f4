"""What the outbox holds and a receiver sends: one notification of one alert to one receiver."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

REASONS_ZH = {
    "opened": "新预警",
    "repeated": "预警再次发生",
    "severity_raised": "预警级别提高",
    "escalated": "超时未确认，升级通报",
    # a supervisor's own escalation is no missed deadline: a receiver told 超时未确认 of an alert acknowledged
    # days ago would ask the town why it ignored it, not what help it needs (a webhook's `reason` tells them apart too)
    "escalated_by_hand": "手动升级通报",
    # acknowledged, then left: neither put under rectification nor verified nor closed in warnings.handle_within_hours (早处置)
    "handling_overdue": "已确认超时未处置，升级通报",
    "reopened": "预警重新打开",
    # the system closed it (a correction or re-test took the failure back, the awaited record came…): those told of it
    # may have sealed products or planned a visit on it
    "closed_by_system": "预警自动关闭",
    # the enterprise moved town: the alert is the new town's to handle from now on
    "transferred": "预警移交",
    # the report the alert rests on was corrected and still fails: its evidence changed (a measure taken on the old
    # figures is to be checked against the new ones)
    "evidence_corrected": "预警证据更正",
}


@dataclass(frozen=True)
class Notification:
    delivery_id: str  # deterministic: the same alert step to the same receiver always has this id (a receiver may dedupe on it)
    alert_id: str
    enterprise_id: str
    receiver: str  # Receiver.name
    channel: str  # Receiver.kind: email, webhook, dingtalk, wecom
    reason: str  # a key of REASONS_ZH
    subject_zh: str
    text_zh: str  # plain text, several lines: what happened, what to do, the evidence
    alert: dict[str, Any] = field(default_factory=dict)  # the alert as JSON, evidence included

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Notification":
        return cls(**json.loads(text))
