"""Interop: a third-party reader (confluent-kafka + fastavro) decodes CarTelemetry of two catalog versions.

The module fixture starts a real Kafka broker, a schema registry (`fleettwin registry`) and two `fleettwin
process` roles, one on cardata-v1 (deploy/catalogs/cardata-v1.yaml) and one on v2 (cardata-v1 plus odometer and
cabin_temp, tests/fixtures/catalogs/cardata-v2.yaml), each in its own consumer group so that both convert every
raw message: cars on firmware 2 send the new signals, the v1 process drops them as unknown fields, the v2
process keeps them. fleet.telemetry then holds each message twice, under two registered writer schemas. Then:

- each record decodes with fastavro by the writer schema its Confluent header names (fetched by id once);
- with the newest registered version as the reader schema (Avro schema resolution, what a consumer
  upgraded to v2 does) both versions read: the new signals are null in v1 records and carry the car's
  values in v2 records;
- Confluent's AvroDeserializer reads both versions the same way.
"""

import io
import json
import subprocess
import time
import uuid

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from interop import INT_SIGNALS, ROOT, SIGNALS, fleettwin_bin, start_service, stop_service, terminate
from test_kafka_interop import SUBJECT, TOPIC, SchemaCache, confluent_frame, consume_all, first_line, http

CATALOG_V1 = f"{ROOT}/deploy/catalogs/cardata-v1.yaml"
CATALOG_V2 = f"{ROOT}/tests/fixtures/catalogs/cardata-v2.yaml"
CARS = 10
MESSAGES_PER_CAR = 5
NEW_SIGNALS = ["odometer", "cabin_temp"]


def raw_message(car, seq):
    """A firmware-2 car's JSON message: every cardata-v1 signal plus the v2 ones."""
    values = {s: (30 if s in INT_SIGNALS else 1.25) for s in SIGNALS}
    values.update(car=car, ts=1_700_000_000_000 + seq * 1000, seq=seq, lat=48.1, lon=11.5,
                  odometer=1000.5 + seq, cabin_temp=20 + seq)
    return json.dumps(values)


def wait_for(predicate, what, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def topic_size(bootstrap, topic):
    """Records in `topic` now: the sum of its partitions' watermark spans."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fleettwin-interop-{uuid.uuid4()}"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        spans = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in meta.partitions]
        return sum(high - low for low, high in spans)
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """Kafka + registry + process roles on catalog v1 and v2, each having converted every raw message."""
    binary = fleettwin_bin()
    work = tmp_path_factory.mktemp("evolution-interop")
    kafka_addr, procs = None, []
    try:
        kafka_addr = start_service("kafka")
        reg_out = work / "registry.stdout"
        with open(reg_out, "w") as out, open(work / "registry.stderr", "w") as err:
            procs.append(subprocess.Popen(
                [binary, "registry", "--listen", "127.0.0.1:0", "--data-dir", str(work / "registry")],
                stdout=out, stderr=err))
        registry_url = first_line(reg_out, procs[0], 30)
        logs = {}
        for version, catalog in [("v1", CATALOG_V1), ("v2", CATALOG_V2)]:
            logs[version] = work / f"process-{version}.log"
            with open(logs[version], "w") as log:
                procs.append(subprocess.Popen(
                    [binary, "process", "--kafka", kafka_addr, "--schema-registry", registry_url,
                     "--catalog", catalog, "--group", f"fleettwin.process.{version}"],
                    stdout=log, stderr=subprocess.STDOUT))
            wait_for(lambda: "log: Kafka" in logs[version].read_text(), f"process {version} start", 60)
        admin = AdminClient({"bootstrap.servers": kafka_addr})
        wait_for(lambda: "fleet.telemetry.raw" in admin.list_topics(timeout=10).topics, "raw topic", 60)

        producer = Producer({"bootstrap.servers": kafka_addr})
        for c in range(CARS):
            for seq in range(1, MESSAGES_PER_CAR + 1):
                car = f"car-{c:03d}"
                producer.produce("fleet.telemetry.raw", key=car, value=raw_message(car, seq))
        assert producer.flush(30) == 0

        def converted():
            exited = [p.args for p in procs if p.poll() is not None]
            assert not exited, f"exited: {exited}\n" + "".join(log.read_text() for log in logs.values())
            return topic_size(kafka_addr, TOPIC) >= 2 * CARS * MESSAGES_PER_CAR
        wait_for(converted, "both process roles converting every message", 120)
        yield {"kafka": kafka_addr, "registry": registry_url}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                terminate(p, 15)
        if kafka_addr:
            stop_service("kafka", kafka_addr)


def test_both_catalog_versions_decode_through_the_registry(two_versions):
    url = two_versions["registry"]
    status, versions = http("GET", f"{url}/subjects/{SUBJECT}/versions")
    assert (status, versions) == (200, [1, 2]), f"{SUBJECT}: {status} {versions}"
    status, latest = http("GET", f"{url}/subjects/{SUBJECT}/versions/latest")
    assert status == 200
    reader = fastavro.parse_schema(json.loads(latest["schema"]))

    cache = SchemaCache(url)
    by_id = {}
    for m in consume_all(two_versions["kafka"], TOPIC):
        schema_id, body = confluent_frame(m.value())
        writer = cache.get(schema_id)
        as_written = fastavro.schemaless_reader(io.BytesIO(body), writer)
        resolved = fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
        key = (resolved["car"], resolved["seq"])
        assert key not in by_id.setdefault(schema_id, {}), f"{key} twice under schema id {schema_id}"
        by_id[schema_id][key] = (as_written, resolved)

    assert len(by_id) == 2, f"schema ids on {TOPIC}: {sorted(by_id)}"
    assert cache.fetches == 2, "a writer schema was fetched more than once"
    expected = {(f"car-{c:03d}", seq) for c in range(CARS) for seq in range(1, MESSAGES_PER_CAR + 1)}
    old_id, new_id = sorted(by_id)
    assert latest["id"] == new_id
    for schema_id, records in by_id.items():
        assert set(records) == expected, f"schema id {schema_id}: {len(records)} of {len(expected)} messages"
        for (car, seq), (as_written, resolved) in records.items():
            assert resolved["speed"] == 1.25 and resolved["tire_pressure_1_1"] == 30
            if schema_id == old_id:  # the v1 process dropped the new signals: its schema has no field for them
                assert not set(NEW_SIGNALS) & set(as_written), f"v1 record with {sorted(as_written)}"
                assert [resolved[s] for s in NEW_SIGNALS] == [None, None]
            else:
                assert [as_written[s] for s in NEW_SIGNALS] == [1000.5 + seq, 20 + seq], (car, seq)
                assert resolved == as_written


def test_confluent_deserializer_reads_both_versions_into_the_newest(two_versions):
    url = two_versions["registry"]
    _, latest = http("GET", f"{url}/subjects/{SUBJECT}/versions/latest")
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}), schema_str=latest["schema"])
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    seen = {None: 0, "carried": 0}
    for m in consume_all(two_versions["kafka"], TOPIC):
        record = deserializer(m.value(), ctx)
        assert set(NEW_SIGNALS) <= set(record), sorted(record)
        seen["carried" if record["odometer"] is not None else None] += 1
    assert seen == {None: CARS * MESSAGES_PER_CAR, "carried": CARS * MESSAGES_PER_CAR}, seen
