"""The bodies ``POST /v1/events`` answers with, as models for the OpenAPI document.

A lab integrator writes the client from ``/openapi.json``: without these, it names the status
codes and leaves the integrator to guess what the body of a 409 or a 422 holds.  The API builds
its answers as plain dicts (the hot path: a model per answer would be validated for nothing);
tests/test_api_answers.py checks that every answer the running server gives matches its model
here, so the document cannot drift from the answers.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    """One thing wrong with (or worth knowing about) an event: which field, what kind, why."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="where, as a path into the event (payload.items[0].values[1]), or query.<name> for a parameter; "
                                   "empty for the whole event or body")
    type: str = Field(description="the kind, stable for programs: missing, enum, datetime_from_date_parsing, conflict, forbidden, "
                                  "client_reason, unknown_item, enterprise_unregistered, retest_inadmissible, …")
    reason: str = Field(description="why, in English")
    reason_zh: str = Field(description="why, in Chinese (原因)")


class RefusedProblem(Problem):
    """A refused event's problem: which element of the batch, and the dead letter that keeps it."""

    index: int | None = Field(default=None, description="0-based position of the event in the batch; null (or absent: a bad query "
                                                           "parameter) for a single event or a body not read as a batch")
    dead_letter_id: str | None = Field(default=None, description="the dead letter keeping the refused event's own bytes: GET /v1/dead-letters/{id}")
    event_id: str | None = Field(default=None, description="an event_id conflict only (409, or beside other errors in a 422 or 403): "
                                                           "the event_id already in use")
    logged_seq: int | None = Field(default=None, description="an event_id conflict only: the log seq of the event that already holds "
                                                             "this event_id (null: it came in the same batch or at the same moment)")
    raw_bytes: int | None = Field(default=None, description="413 body_too_large only: the body's size in bytes (sent without a "
                                                            "Content-Length: what was read before it was refused)")


class Refusal(BaseModel):
    """Nothing of the request was written: what to fix, each refused event kept in dead letters
    (the 401 and 403 of a refused key say only ``detail``)."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="what happened, in Chinese, for a person")
    detail_en: str | None = Field(default=None, description="the same in English (absent when the key itself was refused: "
                                                         "401, or a 403 for the key's role, whose detail says both)")
    request_id: str | None = Field(default=None, description="this request's id, as the audit log and the dead letters name it")
    errors: list[RefusedProblem] = Field(default_factory=list, description="every problem found, all at once (absent on a 503)")
    starting: dict[str, Any] | None = Field(default=None, description="503 while the service starts: how far the replay of the log is "
                                                                      "(as GET /healthz says it)")


class EventOutcome(BaseModel):
    """What became of one event of the request, in the order posted."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    status: Literal["accepted", "duplicate"] = Field(
        description="accepted: written now; duplicate: this event_id with the same content was written before (a retry: no second effect)")
    seq: int | None = Field(description="its place in the event log")
    warnings: list[Problem] | None = Field(
        default=None, description="accepted, but qrisk tells the sender something: items it cannot judge, a re-test it will not "
                                  "admit, an enterprise not registered yet, … (a retry hears the same warnings)")


class Accepted(BaseModel):
    """Every event of the request is durable in the log (accepted now, or a duplicate of one that was)."""

    model_config = ConfigDict(extra="forbid")

    accepted: int = Field(description="events written by this request")
    duplicates: int = Field(description="events already in the log with the same event_id and content")
    warnings: int | None = Field(default=None, description="how many warnings the events carry in all (absent: none)")
    events: list[EventOutcome]
