"""Interop: pymongo reads the twins and history fleettwin writes to a MongoDB-compatible server (DESIGN.md §4
Twin, MongoDB collections).

One module fixture starts a real FerretDB (scripts/services/ferretdb) and runs the whole pipeline once into it
(`fleettwin up --fast --mongo URI`). Then pymongo, a third-party client, finds the documented field names and
BSON types: numbers as numbers (the catalog's int signals as integers), times as BSON dates, the location as a
GeoJSON Point, telemetry `_id` = "{car}:{seq}", one twin per car equal to the last event of its car.
"""

import datetime
import json
import subprocess

import pytest
from pymongo import MongoClient

from interop import DOUBLE_SIGNALS, INT_SIGNALS, SIGNALS, fleettwin_bin, start_service, stop_service

CARS = 12
INTERVAL_S = 1
DURATION_S = 30
MESSAGES_PER_CAR = DURATION_S // INTERVAL_S
DATABASE = "fleettwin_interop"


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    """FerretDB + one finished `fleettwin up --mongo` run; stops the server whatever happens."""
    binary = fleettwin_bin()
    work = tmp_path_factory.mktemp("mongo-interop")
    uri = None
    try:
        uri = start_service("ferretdb", timeout=300)
        store_uri = uri.rstrip("/") + "/" + DATABASE
        summary_path = work / "summary.json"
        cmd = [binary, "up", "--mongo", store_uri, "--fast", "--cars", str(CARS), "--interval", f"{INTERVAL_S}s",
               "--duration", f"{DURATION_S}s", "--data-dir", str(work / "data"), "--summary-json",
               str(summary_path), "--http", ""]
        up = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert up.returncode == 0, f"fleettwin up exited {up.returncode}:\n{up.stdout[-4000:]}"
        assert "store.mongo:" in up.stdout, "the adapter logs what the server supports"
        summary = json.loads(summary_path.read_text())
        client = MongoClient(uri)
        yield {"db": client[DATABASE], "uri": store_uri, "summary": summary, "binary": binary}
        client.close()
    finally:
        if uri:
            stop_service("ferretdb", uri)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def test_run_stored_every_message_exactly_once(mongo):
    s = mongo["summary"]
    assert s["published"] == CARS * MESSAGES_PER_CAR, s
    assert s["lost"] == 0 and s["duplicates"] == 0, s
    db = mongo["db"]
    assert db.telemetry.count_documents({}) == CARS * MESSAGES_PER_CAR
    assert db.twins.count_documents({}) == CARS


def test_telemetry_documents_have_the_documented_types(mongo):
    db = mongo["db"]
    car = db.twins.find_one(sort=[("_id", 1)])["_id"]
    rows = list(db.telemetry.find({"car": car}).sort("seq", 1))
    assert [r["seq"] for r in rows] == list(range(1, MESSAGES_PER_CAR + 1))
    for r in rows:
        assert r["_id"] == f"{car}:{r['seq']}"
        assert isinstance(r["seq"], int)
        assert isinstance(r["ts"], datetime.datetime), type(r["ts"])
        loc = r["location"]
        assert loc["type"] == "Point" and len(loc["coordinates"]) == 2
        lon, lat = loc["coordinates"]
        assert is_number(lon) and is_number(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
        for name in DOUBLE_SIGNALS:
            assert isinstance(r[name], float), (name, r[name])
        for name in INT_SIGNALS:
            assert isinstance(r[name], int) and not isinstance(r[name], bool), (name, r[name])
        assert set(SIGNALS) <= set(r)
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_twin_documents_have_the_documented_shape_and_equal_the_last_event(mongo):
    db = mongo["db"]
    for twin in db.twins.find():
        car = twin["_id"]
        last = db.telemetry.find_one({"car": car}, sort=[("seq", -1)])
        assert isinstance(twin["version"], int) and twin["version"] >= 1
        rep = twin["reported"]
        assert rep["seq"] == last["seq"] == MESSAGES_PER_CAR
        assert isinstance(rep["ts"], datetime.datetime) and rep["ts"] == last["ts"]
        for name in SIGNALS:
            assert is_number(rep[name]) and rep[name] == last[name], name
        assert twin["location"] == last["location"]
        h = twin["health"]
        assert h["status"] in {"ok", "warning", "anomaly", "unknown"}
        assert is_number(h["score"]) or h["score"] is None
        assert isinstance(h["since"], datetime.datetime)
        c = twin["connection"]
        assert isinstance(c["online"], bool)
        assert isinstance(c["first_seen"], datetime.datetime) and isinstance(c["last_seen"], datetime.datetime)
        assert c["first_seen"] <= c["last_seen"]
        assert twin["stats"]["messages"] == MESSAGES_PER_CAR
        assert is_number(twin["stats"]["distance_km"])
        assert isinstance(twin["desired"], dict) and isinstance(twin["delta"], list)
        assert all(isinstance(v, datetime.datetime) for v in twin["metadata"].values())


def test_indexes_of_the_design_exist(mongo):
    db = mongo["db"]
    twin_keys = [tuple(i["key"].keys()) for i in db.twins.list_indexes()]
    assert ("health.status",) in twin_keys and ("connection.last_seen",) in twin_keys
    telemetry_keys = [tuple(i["key"].keys()) for i in db.telemetry.list_indexes()]
    assert ("car", "ts") in telemetry_keys


def test_query_cli_reads_the_same_store(mongo):
    out = subprocess.run([mongo["binary"], "query", "summary", "--mongo", mongo["uri"]], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["cars"] == CARS
    assert sum(summary["by_status"].values()) == CARS
    bad = subprocess.run([mongo["binary"], "query", "twins", "--mongo", mongo["uri"], "--filter",
                          'reported.speed > && health.status == "ok"'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    assert bad.returncode == 2 and "position 17" in bad.stderr, bad.stderr
    fast = subprocess.run([mongo["binary"], "query", "twins", "--mongo", mongo["uri"], "--filter",
                           "reported.speed >= 0 && stats.messages == 30"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert fast.returncode == 0, fast.stderr
    assert len(fast.stdout.strip().splitlines()) == CARS
