"""Dashboards out of the code: JSON files for Grafana's file provisioning, or straight into a
running Grafana through its HTTP API (grafana-client, the maintained fork of grafana-api)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards.boards import DASHBOARDS

FOLDER_UID = "qrisk"
FOLDER_TITLE = "qrisk 食品质量风险"


def render(model: dict[str, Any]) -> str:
    """One dashboard as the file holds it: stable (sorted keys), readable (Chinese as is)."""
    return json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def export(directory: str | Path) -> list[Path]:
    """Write every dashboard to ``directory`` (created if missing); returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in DASHBOARDS.items():
        path = out / name
        path.write_text(render(build()), encoding="utf-8")
        written.append(path)
    return written


def publish(url: str, token: str | None = None, user: str | None = None, password: str | None = None,
            timeout: float = 10.0) -> list[dict[str, Any]]:
    """Create the qrisk folder if needed and put every dashboard in it, replacing older versions.

    Returns Grafana's answer for each dashboard (uid, url, version, status)."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    if token:
        credential: Any = token
    elif user is not None:
        credential = (user, password or "")
    else:
        credential = None
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
    answers = []
    for build in DASHBOARDS.values():
        model = {**build(), "id": None}  # matched by uid: Grafana assigns its own numeric id
        answers.append(api.dashboard.update_dashboard(
            {"dashboard": model, "folderUid": FOLDER_UID, "overwrite": True, "message": "qrisk dashboards publish"}))
    return answers
