"""The grafana reader's limits hold against its own queries.  readonly 2 lets a query set settings, its limits
too: ``SETTINGS max_execution_time = 0, max_memory_usage = 0`` lifted the 60 s limit.  The profile's constraints
in deploy/clickhouse/users.d/grafana-reader.xml refuse that, and still let the plugin set max_execution_time itself
(its driver sends the data source's query timeout + 5 s on every query: grafana/clickhouse-datasource#325).

Debian's ClickHouse 18.16 (the tests' server) knows no constraints: it refuses the profile ("Unknown setting
constraints").  chdb's ClickHouse (a current release, as the compose file runs) applies it: the profile is taken
from the file as it is and given to chdb's user, in a process of its own (chdb reads its configuration once).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import yaml

from tests.conftest import ROOT

READER = ROOT / "deploy" / "clickhouse" / "users.d" / "grafana-reader.xml"

_MIGRATE = """
import sys
from qrisk.store import ChdbStore, migrate
st = ChdbStore(sys.argv[1])
migrate(st)
st.close()
"""

# As the reader: the profile's values, settings a query may and may not set, a write, and every panel of every
# board run after the setting the plugin's driver sends
_AS_READER = """
import datetime as dt, json, sys
import chdb
from dashboards.boards import DASHBOARDS
from dashboards.macros import expand

data_dir, config, attempts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
conn = chdb.connect(f"file:{data_dir}?config-file={config}")
cur = conn.cursor()
out = {"attempts": {}, "panels": {}}
cur.execute("SELECT getSetting('readonly'), getSetting('max_execution_time'), getSetting('max_memory_usage')")
out["profile"] = [int(float(v)) for v in cur.fetchall()[0]]
for sql in attempts:
    try:
        cur.execute(sql)
        cur.fetchall()
        out["attempts"][sql] = "ok"
    except Exception as exc:
        out["attempts"][sql] = str(exc)
start, end = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)
for name, build in DASHBOARDS.items():
    model = build()
    for panel in model["panels"]:
        for target in panel["targets"]:
            try:
                cur.execute(expand(target["rawSql"], start, end, {"enterprise": "E-1", "item": "bromate"}))
                cur.fetchall()
                out["panels"][f"{name} / {panel['title']}"] = "ok"
            except Exception as exc:
                out["panels"][f"{name} / {panel['title']}"] = str(exc)
print(json.dumps(out, ensure_ascii=False))
"""


def _profile() -> ET.Element:
    return ET.parse(READER).getroot().find("profiles/grafana_reader")


def _bound(setting: str, which: str) -> int:
    return int(_profile().findtext(f"constraints/{setting}/{which}"))


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_reader_cannot_lift_its_limits_and_its_panels_still_run(tmp_path):
    data_dir = tmp_path / "store"
    _run(_MIGRATE, str(data_dir))
    # chdb's user takes the reader's profile, copied from the file as it is
    users = ET.Element("clickhouse")
    profiles = ET.SubElement(users, "profiles")
    ET.SubElement(profiles, "default")
    profiles.append(_profile())
    user = ET.SubElement(ET.SubElement(users, "users"), "default")
    ET.SubElement(user, "no_password")
    ET.SubElement(user, "profile").text = "grafana_reader"
    ET.SubElement(ET.SubElement(users, "quotas"), "default")
    (tmp_path / "users.xml").write_text(ET.tostring(users, encoding="unicode"))
    (tmp_path / "config.xml").write_text(f"<clickhouse><users_config>{tmp_path / 'users.xml'}</users_config></clickhouse>")

    seconds, memory = _bound("max_execution_time", "max"), _bound("max_memory_usage", "max")
    # the provisioned data source's query timeout + 5 s is what the driver sends (int of the time left + 5)
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text())["datasources"][0]
    sent = int(datasource["jsonData"]["queryTimeout"]) + 5
    lifting = ["SELECT 1 SETTINGS max_execution_time = 0", f"SELECT 1 SETTINGS max_execution_time = {seconds + 1}",
               "SELECT 1 SETTINGS max_memory_usage = 0", f"SELECT 1 SETTINGS max_memory_usage = {memory + 1}",
               "SET max_execution_time = 0",
               # (the plugin's default query timeout, 60 s, would send 65: why the data source sets its own)
               "SELECT 1 SETTINGS max_execution_time = 65"]
    allowed = [f"SELECT 1 SETTINGS max_execution_time = {sent}", "SELECT 1 SETTINGS max_execution_time = 10",
               f"SET max_execution_time = {sent}"]
    got = json.loads(_run(_AS_READER, str(data_dir), str(tmp_path / "config.xml"), json.dumps(lifting + allowed + ["CREATE TABLE t (x UInt8) ENGINE = Memory"])))

    assert got["profile"] == [2, seconds, memory], "the profile is in force"
    assert seconds == 60 and _bound("max_execution_time", "min") >= 1 and _bound("max_memory_usage", "min") >= 1
    for sql in lifting:
        assert "SETTING_CONSTRAINT_VIOLATION" in got["attempts"][sql], (sql, got["attempts"][sql])
    for sql in allowed:
        assert got["attempts"][sql] == "ok", (sql, got["attempts"][sql])
    assert "READONLY" in got["attempts"]["CREATE TABLE t (x UInt8) ENGINE = Memory"]
    assert got["panels"] and set(got["panels"].values()) == {"ok"}, {k: v for k, v in got["panels"].items() if v != "ok"}
