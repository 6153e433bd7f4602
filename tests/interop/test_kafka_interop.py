"""Interop: third-party Python clients read what fleettwin writes to Kafka (DESIGN.md §4 Topics, §6).

One module fixture starts a real Kafka broker (scripts/services/kafka), a schema registry (`fleettwin
registry`) and runs the whole pipeline once (`fleettwin up --kafka ... --schema-registry ...`), injecting a
few invalid payloads for the DLQ. Then:

- confluent-kafka reads every record of fleet.telemetry, resolves its writer schema over the registry's REST
  API by the id in the Confluent header, decodes it with fastavro, and every field equals the SQLite row of
  the same (car, seq) -- the store holds exactly what the simulator published (proven by the C++ tests).
  Confluent's own AvroDeserializer + SchemaRegistryClient decode the same values.
- The registry refuses an incompatible CarTelemetry version with 409 and accepts a compatible one.
- fleet.telemetry.dlq records carry error.reason / error.stage headers.
"""

import datetime
import io
import json
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import fastavro
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from interop import INT_SIGNALS, SIGNALS, fleettwin_bin, start_service, stop_service, terminate

CARS = 50
INTERVAL_S = 1
DURATION_S = 60
MESSAGES_PER_CAR = DURATION_S // INTERVAL_S
INJECT_INVALID = 12

TOPIC = "fleet.telemetry"
DLQ_TOPIC = "fleet.telemetry.dlq"
SUBJECT = "fleet.telemetry-value"
SR_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

FIELDS = ["car", "ts", "seq", "lat", "lon"] + SIGNALS
INT_FIELDS = {"seq", *INT_SIGNALS}

# RejectReason names (src/codec/json.h).
DLQ_REASONS = {"malformed", "missing_field", "wrong_type", "non_finite", "out_of_range", "oversized",
               "bad_car_id", "unknown_field", "duplicate_field"}
MAX_PAYLOAD_BYTES = 16384  # process.max_payload_bytes default
CAR_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def first_line(path, proc, timeout_s):
    """The first line a child writes to `path` (its stdout), waiting while it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "\n" in text:
            return text.split("\n", 1)[0].strip()
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before printing its URL")
        time.sleep(0.05)
    raise RuntimeError(f"printed no URL within {timeout_s} s")


# ---- registry REST (urllib only: what any HTTP client sees) --------------------------------------------

def http(method, url, body=None):
    """(status, parsed JSON body) of one request; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": SR_CONTENT_TYPE, "Accept": SR_CONTENT_TYPE})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


class SchemaCache:
    """Writer schemas by id, each fetched once with GET /schemas/ids/{id}."""

    def __init__(self, url):
        self.url = url
        self.texts = {}
        self.parsed = {}
        self.fetches = 0

    def get(self, schema_id):
        if schema_id not in self.parsed:
            self.fetches += 1
            status, body = http("GET", f"{self.url}/schemas/ids/{schema_id}")
            assert status == 200, f"schema id {schema_id} from a record is not registered: {status} {body}"
            self.texts[schema_id] = body["schema"]
            self.parsed[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
        return self.parsed[schema_id]


# ---- Kafka --------------------------------------------------------------------------------------------

def consume_all(bootstrap, topic, timeout_s=60):
    """Every record of `topic` from the beginning to the end of every partition, read by a fresh group."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"fleettwin-interop-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        assert meta.error is None, f"{topic}: {meta.error}"
        partitions = set(meta.partitions)
        assert partitions, f"{topic} has no partitions"
        high = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.subscribe([topic])
        records, at_end = [], set()
        deadline = time.monotonic() + timeout_s
        while at_end != partitions:
            assert time.monotonic() < deadline, (
                f"{topic}: end not reached within {timeout_s} s; at end: {sorted(at_end)} of {sorted(partitions)}")
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    raise AssertionError(f"{topic}: consumer error {m.error()}")
                records.append(m)
        per_partition = {p: 0 for p in partitions}
        for m in records:
            per_partition[m.partition()] += 1
        low = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in partitions}
        assert per_partition == {p: high[p] - low[p] for p in partitions}, "records read != watermark span"
        return records
    finally:
        consumer.close()


def confluent_frame(value):
    """(schema id, Avro body) of a Confluent wire-format value."""
    assert len(value) >= 5, f"value of {len(value)} bytes is shorter than the Confluent header"
    assert value[0] == 0, f"magic byte {value[0]} != 0"
    return int.from_bytes(value[1:5], "big"), value[5:]


def decode(cache, value):
    schema_id, body = confluent_frame(value)
    fo = io.BytesIO(body)
    record = fastavro.schemaless_reader(fo, cache.get(schema_id))
    assert fo.tell() == len(body), f"{len(body) - fo.tell()} trailing bytes after the record"
    return schema_id, record


def as_row(record):
    """A decoded CarTelemetry as the tuple of FIELDS, ts back in ms since the epoch."""
    ts = record["ts"]
    assert isinstance(ts, datetime.datetime), f"ts is not timestamp-millis: {ts!r}"
    ts_ms = (ts - EPOCH) // datetime.timedelta(milliseconds=1)
    return tuple(ts_ms if f == "ts" else record[f] for f in FIELDS)


# ---- the pipeline -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Kafka + registry + one finished `fleettwin up` run; stops what it started, whatever happens."""
    binary = fleettwin_bin()
    work = tmp_path_factory.mktemp("kafka-interop")
    kafka_addr, registry = None, None
    try:
        kafka_addr = start_service("kafka")

        reg_out = work / "registry.stdout"
        with open(reg_out, "w") as out, open(work / "registry.stderr", "w") as err:
            registry = subprocess.Popen(
                [binary, "registry", "--listen", "127.0.0.1:0", "--data-dir", str(work / "registry")],
                stdout=out, stderr=err)
        registry_url = first_line(reg_out, registry, 30)
        assert registry_url.startswith("http://"), f"registry printed {registry_url!r}"
        status, subjects = http("GET", f"{registry_url}/subjects")
        assert (status, subjects) == (200, []), f"fresh registry: {status} {subjects}"

        data_dir, summary_path = work / "data", work / "summary.json"
        cmd = [binary, "up", "--kafka", kafka_addr, "--schema-registry", registry_url, "--fast",
               "--cars", str(CARS), "--interval", f"{INTERVAL_S}s", "--duration", f"{DURATION_S}s",
               "--inject-invalid", str(INJECT_INVALID), "--data-dir", str(data_dir),
               "--summary-json", str(summary_path), "--http", "127.0.0.1:0"]
        up = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
        assert up.returncode == 0, f"fleettwin up exited {up.returncode}:\n{up.stdout[-4000:]}"
        summary = json.loads(summary_path.read_text())
        assert summary["published"] == CARS * MESSAGES_PER_CAR, summary
        assert summary["injected_invalid"] == INJECT_INVALID, summary

        yield {"kafka": kafka_addr, "registry": registry_url, "db": str(data_dir / "fleettwin.db"),
               "summary": summary}
    finally:
        if registry is not None and registry.poll() is None:
            terminate(registry, 15)
        if kafka_addr:
            stop_service("kafka", kafka_addr)


@pytest.fixture(scope="module")
def telemetry(pipeline):
    return consume_all(pipeline["kafka"], TOPIC)


def store_rows(db_path):
    """(car, seq) -> tuple of FIELDS from the SQLite store."""
    cols = ", ".join(f'"{f}"' for f in FIELDS)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(f"SELECT {cols} FROM telemetry").fetchall()
    by_key = {}
    for row in rows:
        key = (row[0], row[2])
        assert key not in by_key, f"store holds {key} twice"
        by_key[key] = row
    return by_key


# ---- tests --------------------------------------------------------------------------------------------

def test_telemetry_decodes_to_what_the_simulator_produced(pipeline, telemetry):
    cache = SchemaCache(pipeline["registry"])
    expected = store_rows(pipeline["db"])
    assert len(expected) == CARS * MESSAGES_PER_CAR

    seen = set()
    schema_ids = set()
    for m in telemetry:
        schema_id, record = decode(cache, m.value())
        schema_ids.add(schema_id)
        # The signals and the position are nullable unions (a car may send a subset); the simulator sends them all,
        # in range, so none is null and nothing is flagged.
        assert set(record) == set(FIELDS) | {"flags"}, f"fields {sorted(record)}"
        assert record["flags"] == [], f"flags {record['flags']}"
        for f in FIELDS:
            want = str if f == "car" else int if f in INT_FIELDS else float
            if f != "ts":
                assert type(record[f]) is want, f"{f} is {type(record[f]).__name__}, not {want.__name__}"
        got = as_row(record)
        key = (record["car"], record["seq"])
        assert m.key() == record["car"].encode(), f"record key {m.key()!r} != car {record['car']!r}"
        assert key in expected, f"{key} on {TOPIC} is not in the store"
        # Exact equality: doubles bit-for-bit as numbers (SQLite keeps no sign of zero, so -0.0 == 0.0).
        want_row = expected[key]
        diff = {f: (g, w) for f, g, w in zip(FIELDS, got, want_row) if g != w or type(g) is not type(w)}
        assert not diff, f"{key}: decoded != simulator: {diff}"
        seen.add(key)

    assert len(seen) == CARS * MESSAGES_PER_CAR, f"{len(seen)} distinct (car, seq) on {TOPIC}"
    assert cache.fetches == len(schema_ids), "schemas were fetched more than once per id"
    # Every id in the records is the one registered under fleet.telemetry-value for that exact schema.
    for schema_id in schema_ids:
        status, body = http("POST", f"{pipeline['registry']}/subjects/{SUBJECT}",
                            {"schema": cache.texts[schema_id]})
        assert status == 200 and body["id"] == schema_id, f"lookup under {SUBJECT}: {status} {body}"
        assert json.loads(cache.texts[schema_id])["name"] == "CarTelemetry"


def test_confluent_avro_deserializer_reads_the_same_values(pipeline, telemetry):
    cache = SchemaCache(pipeline["registry"])
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": pipeline["registry"]}))
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    for m in telemetry:
        ours = decode(cache, m.value())[1]
        theirs = deserializer(m.value(), ctx)
        assert theirs == ours, f"{m.key()!r}: AvroDeserializer {theirs} != fastavro {ours}"
    assert len(telemetry) >= CARS * MESSAGES_PER_CAR


def test_registry_refuses_incompatible_versions_with_409(pipeline, telemetry):
    url = pipeline["registry"]
    status, latest = http("GET", f"{url}/subjects/{SUBJECT}/versions/latest")
    assert status == 200, latest
    original = json.loads(latest["schema"])
    _, versions_before = http("GET", f"{url}/subjects/{SUBJECT}/versions")

    def variant(mutate):
        s = json.loads(latest["schema"])
        mutate(s["fields"])
        return json.dumps(s)

    def add_required(fields):
        fields.append({"name": "odometer_km", "type": "double"})  # no default: old records unreadable

    def car_to_int(fields):
        next(f for f in fields if f["name"] == "car")["type"] = "int"

    def add_optional(fields):
        fields.append({"name": "odometer_km", "type": ["null", "double"], "default": None})

    for name, mutate in [("new field without default", add_required), ("car string -> int", car_to_int)]:
        schema = variant(mutate)
        status, body = http("POST", f"{url}/subjects/{SUBJECT}/versions", {"schema": schema})
        assert status == 409, f"{name}: registering answered {status} {body}"
        assert isinstance(body, dict) and body.get("error_code") == 409, f"{name}: body {body}"
        status, body = http("POST", f"{url}/compatibility/subjects/{SUBJECT}/versions/latest", {"schema": schema})
        assert (status, body.get("is_compatible")) == (200, False), f"{name}: compatibility {status} {body}"
        # Confluent's own client sees the same refusal.
        with pytest.raises(SchemaRegistryError) as refused:
            SchemaRegistryClient({"url": url}).register_schema(SUBJECT, Schema(schema, "AVRO"))
        assert refused.value.http_status_code == 409, f"{name}: {refused.value}"

    status, versions = http("GET", f"{url}/subjects/{SUBJECT}/versions")
    assert versions == versions_before, "a refused schema became a version"

    # The registered schema again: same id, no new version.
    status, body = http("POST", f"{url}/subjects/{SUBJECT}/versions", {"schema": latest["schema"]})
    assert (status, body) == (200, {"id": latest["id"]}), f"re-registering: {status} {body}"

    compatible = variant(add_optional)
    status, body = http("POST", f"{url}/compatibility/subjects/{SUBJECT}/versions/latest", {"schema": compatible})
    assert (status, body.get("is_compatible")) == (200, True), f"compatibility {status} {body}"
    status, body = http("POST", f"{url}/subjects/{SUBJECT}/versions", {"schema": compatible})
    assert status == 200 and isinstance(body.get("id"), int), f"compatible version: {status} {body}"
    new_id = body["id"]
    assert new_id != latest["id"]
    _, versions = http("GET", f"{url}/subjects/{SUBJECT}/versions")
    assert versions == versions_before + [versions_before[-1] + 1], versions
    status, fetched = http("GET", f"{url}/schemas/ids/{new_id}")
    assert status == 200
    new_schema = json.loads(fetched["schema"])
    assert [f["name"] for f in new_schema["fields"]] == [f["name"] for f in original["fields"]] + ["odometer_km"]

    # BACKWARD in practice: a record fleettwin wrote reads with the new version as reader schema.
    cache = SchemaCache(url)
    writer_id, body = confluent_frame(telemetry[0].value())
    record = fastavro.schemaless_reader(io.BytesIO(body), cache.get(writer_id), fastavro.parse_schema(new_schema))
    assert record["odometer_km"] is None and record["car"] == telemetry[0].key().decode()


def test_dlq_records_carry_reason_and_stage(pipeline):
    records = consume_all(pipeline["kafka"], DLQ_TOPIC)
    assert len(records) == INJECT_INVALID == pipeline["summary"]["dlq"], \
        f"{len(records)} on {DLQ_TOPIC}, summary {pipeline['summary']}"
    reasons = set()
    for m in records:
        headers = {}
        for k, v in m.headers() or []:
            headers.setdefault(k, []).append(v.decode() if v is not None else None)
        assert headers.get("error.stage") == ["process"], f"headers {headers}"
        reason = headers.get("error.reason", [None])
        assert len(reason) == 1 and reason[0] in DLQ_REASONS, f"error.reason {reason}"
        reasons.add(reason[0])
        if m.key() is not None:
            assert CAR_ID.match(m.key().decode()), f"key {m.key()!r}"
        value = m.value() or b""
        # The original payload: oversized ones exceed the limit, every other one is within it.
        assert (len(value) > MAX_PAYLOAD_BYTES) == (reason[0] == "oversized"), \
            f"{reason[0]} record of {len(value)} bytes"
        assert not (len(value) >= 5 and value[0] == 0), "a DLQ record looks Avro-framed, not the original bytes"
    assert len(reasons) > 1, f"only {reasons}: the injected payloads are of several kinds"
