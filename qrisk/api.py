"""The HTTP API of the embedded runtime (FastAPI)."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ingest.validate import decode_body
from schemas.events import EVENT_TYPES
from qrisk.committer import GroupCommitter
from qrisk.pipeline import DeadLetter, Pipeline

_BATCH_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/Event"},
        {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "maxItems": 1000},
    ]
}


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, float] = {}

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        self.counters[key] = self.counters.get(key, 0.0) + value

    def render(self, gauges: dict[str, float]) -> str:
        lines = [f"{k} {v:g}" for k, v in sorted(self.counters.items())]
        lines += [f"{k} {v:g}" for k, v in sorted(gauges.items())]
        return "\n".join(lines) + "\n"


def create_app(pipeline: Pipeline, max_body_bytes: int = 8 * 1024 * 1024, max_batch: int = 1000) -> FastAPI:
    app = FastAPI(title="qrisk", version="0.1.0", description="食品质量风险监测 — event-sourced quality-risk monitoring")
    pipeline.start_background_sink()
    committer = GroupCommitter(pipeline)
    metrics = Metrics()
    app.state.pipeline = pipeline
    app.state.committer = committer

    @app.on_event("shutdown")
    def _close() -> None:  # pragma: no cover - exercised by process exit
        committer.close()
        pipeline.close()

    @app.post(
        "/v1/events",
        summary="Post one event or a batch (JSON array)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BATCH_SCHEMA}}}},
        responses={200: {"description": "all events durable (accepted or duplicate)"}, 413: {"description": "body too large"}, 422: {"description": "rejected; nothing of the batch was written; each bad event kept in dead letters"}},
    )
    async def post_events(request: Request) -> JSONResponse:
        raw = await _read_limited(request, max_body_bytes)
        request_id = str(uuid.uuid4())
        events, rejections = decode_body(raw, max_batch)
        if rejections:
            letters = [
                DeadLetter("http", f"request {request_id}" + (f" index {r.index}" if r.index is not None else ""), r.raw, r.reason, r.errors)
                for r in rejections
            ]
            ids = await asyncio.get_running_loop().run_in_executor(None, pipeline.dead_letter, letters)
            metrics.inc("qrisk_events_rejected_total", len(rejections), channel="http")
            errors = []
            for r, dl_id in zip(rejections, ids):
                for e in r.errors:
                    errors.append({"index": r.index, **e, "dead_letter_id": dl_id})
            return JSONResponse(status_code=422, content={
                "detail": f"{len(rejections)} 个事件未通过校验，本批次未写入；请按 errors 修正后重发（重发同一 event_id 是安全的）",
                "detail_en": f"{len(rejections)} event(s) failed validation; nothing of this request was written",
                "request_id": request_id,
                "errors": errors,
            })
        started = time.perf_counter()
        outcomes = await asyncio.wrap_future(committer.submit(events))
        metrics.inc("qrisk_commit_seconds_total", time.perf_counter() - started)
        accepted = sum(1 for o in outcomes if o.status == "accepted")
        metrics.inc("qrisk_events_accepted_total", accepted, channel="http")
        metrics.inc("qrisk_events_duplicate_total", len(outcomes) - accepted, channel="http")
        return JSONResponse(content={
            "accepted": accepted,
            "duplicates": len(outcomes) - accepted,
            "events": [{"event_id": o.event_id, "status": o.status, "seq": o.seq} for o in outcomes],
        })

    @app.get("/v1/enterprises", summary="Every enterprise with its headline figures")
    def list_enterprises() -> list[dict[str, Any]]:
        with pipeline.lock:
            return [
                {
                    "enterprise_id": f.enterprise_id,
                    "name": f.profile.name if f.profile else None,
                    "category": f.profile.category if f.profile else None,
                    "town": f.profile.town if f.profile else None,
                    "counts": f.counts.model_dump(),
                    "pass_rate": f.pass_rate,
                }
                for f in sorted(pipeline.state.files.values(), key=lambda f: f.enterprise_id)
            ]

    @app.get("/v1/enterprises/{enterprise_id}", summary="The credit file (诚信档案) of one enterprise")
    def get_enterprise(enterprise_id: str) -> dict[str, Any]:
        file = pipeline.credit_file(enterprise_id)
        if file is None:
            raise HTTPException(status_code=404, detail=f"未找到企业 {enterprise_id} / no such enterprise")
        return file

    @app.get("/v1/dead-letters", summary="Most recent rejected inputs with their reasons")
    def dead_letters(limit: int = 100) -> list[dict[str, Any]]:
        limit = max(1, min(limit, 1000))
        return pipeline.store.query(
            "SELECT dead_letter_id, received_at, channel, position, reason, errors, raw, raw_encoding "
            "FROM dead_letters ORDER BY received_at DESC, received_ms DESC LIMIT %(limit)s",
            {"limit": limit},
        )

    @app.get("/v1/event-types", summary="Event types this service accepts")
    def event_types() -> list[str]:
        return sorted(EVENT_TYPES)

    @app.get("/healthz", summary="Liveness and readiness")
    def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "events": pipeline.seq,
            "enterprises": len(pipeline.state.files),
            "derived_lag": pipeline.seq - pipeline.derived_seq,  # events folded but not yet in the derived tables
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def prometheus() -> str:
        return metrics.render({
            "qrisk_log_seq": pipeline.seq,
            "qrisk_enterprises": len(pipeline.state.files),
            "qrisk_group_commits_total": committer.batches,
            "qrisk_derived_lag_events": pipeline.seq - pipeline.derived_seq,
        })

    _add_event_schema(app)
    return app


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"请求体超过 {limit} 字节 / body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"请求体超过 {limit} 字节 / body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _add_event_schema(app: FastAPI) -> None:
    from schemas.export import event_json_schema

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        event_schema = event_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(event_schema.pop("$defs", {}))
        components["Event"] = event_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
