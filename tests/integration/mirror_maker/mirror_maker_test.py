#!/usr/bin/env python3
"""An edge site that runs its own Kafka, replicated to central by Kafka's MirrorMaker 2 (issue 18 item 6;
docs/architecture.md "Edge sites: MirrorMaker 2").

Two real Kafka brokers (the site's, central's) and one schema registry (`fleettwin registry`, central's: a Kafka
edge registers its schemas there, so the ids in its records mean the same at central). The site runs `fleettwin up
--kafka SITE --schema-registry CENTRAL_REGISTRY` with its own simulated cars to the end of a short run; an operator
command is produced to central's fleet.commands; then scripts/services/mirror-maker starts MM2 with
deploy/kafka/mm2.properties, and once the command is at the site, the site's car answers it (`fleettwin sim
--kafka SITE`, that car alone, 8 s in real time). Checked, with third-party clients (confluent-kafka, fastavro):

- each of fleet.telemetry, .twins, .scores, .alerts, .command-acks (all at the site) exists on central as
  `<site>.<topic>` with the same partitions, and holds the same records (key and value bytes, per partition, the
  same number of times); every (car, seq) of the site's telemetry is on central as often as at the site (once);
- every central telemetry record decodes with the writer schema that central's registry serves for its id, to
  the (car, seq) of its key;
- the command produced on central is in the site's own fleet.commands (identity policy for that flow), byte for
  byte, and no `central.fleet.commands` exists at the site;
- the car's ack ("acked", the command's id) is in central's `<site>.fleet.command-acks`.

Runs with the interop venv (confluent-kafka + fastavro; scripts/setup creates it). Environment: FLEETTWIN_BIN,
FLEETTWIN_CACHE. Exits non-zero on a failure, with the logs of fleettwin and MirrorMaker.
"""
import collections
import concurrent.futures
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[3]
CACHE = pathlib.Path(os.environ.get("FLEETTWIN_CACHE", pathlib.Path.home() / ".cache" / "fleettwin"))
VENV_PYTHON = CACHE / "interop-venv" / "bin" / "python"

try:
    import fastavro
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
except ImportError:
    if not VENV_PYTHON.exists():
        sys.exit(f"{VENV_PYTHON} is missing: run scripts/setup (or tests/interop/run --install)")
    if pathlib.Path(sys.executable) == VENV_PYTHON:
        raise
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from interop import start_service, stop_service, terminate  # noqa: E402 (after the venv check)

SITE = "depot-7"
CARS, INTERVAL_S, DURATION_S = 20, 1, 30
SITE_TOPICS = ["fleet.telemetry", "fleet.twins", "fleet.scores", "fleet.alerts", "fleet.command-acks"]
COMMAND_CAR = "car-00000"
REPLICATION_TIMEOUT_S = 60


def fail(message, logs=()):
    for path in logs:
        if path and pathlib.Path(path).exists():
            print(f"----- {path} (last 4000 characters) -----\n{pathlib.Path(path).read_text()[-4000:]}")
    sys.exit(f"FAIL: {message}")


def run_service(*args):
    """scripts/services/<args> (not `start`), its stdout."""
    out = subprocess.run([str(ROOT / "scripts" / "services" / args[0]), *args[1:]], stdout=subprocess.PIPE,
                         text=True, timeout=60)
    return out.stdout.strip()


def topic_partitions(bootstrap):
    """topic -> number of partitions, of every topic the cluster has."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return {name: len(t.partitions) for name, t in consumer.list_topics(timeout=10).topics.items()}
    finally:
        consumer.close()


def high_watermarks(bootstrap, topic):
    """partition -> high watermark of `topic`; None while the topic does not exist or has no leaders yet."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            return None
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    except KafkaException:  # e.g. NOT_LEADER_FOR_PARTITION just after MM2 created the topic
        return None
    finally:
        consumer.close()


def read_all(bootstrap, topic, timeout_s=60):
    """Every record of `topic` (start to the high watermark of each partition) as (partition, key, value)."""
    high = high_watermarks(bootstrap, topic)
    assert high is not None, f"{topic} does not exist on {bootstrap}"
    want = {p for p, h in high.items() if h > 0}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"mm2-test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    records, done = [], set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in want])
        deadline = time.monotonic() + timeout_s
        while done != want:
            assert time.monotonic() < deadline, f"{topic}: high watermarks {high} not reached in {timeout_s} s"
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"{topic}: {m.error()}")
                if m.offset() < high[m.partition()]:
                    records.append((m.partition(), m.key(), m.value()))
                if m.offset() + 1 >= high[m.partition()]:
                    done.add(m.partition())
    finally:
        consumer.close()
    return records


def decode_telemetry(registry, value, schemas):
    """(car, seq) of a Confluent-framed CarTelemetry, with the writer schema `registry` serves for its id."""
    import urllib.request

    assert len(value) > 5 and value[0] == 0, "not the Confluent wire format"
    schema_id = int.from_bytes(value[1:5], "big")
    if schema_id not in schemas:
        with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}", timeout=10) as r:
            schemas[schema_id] = fastavro.parse_schema(json.loads(json.loads(r.read())["schema"]))
    body = io.BytesIO(value[5:])
    record = fastavro.schemaless_reader(body, schemas[schema_id])
    assert body.tell() == len(value) - 5, "trailing bytes after the record"
    return record["car"], record["seq"]


def start_registry(binary, work):
    out = work / "registry.stdout"
    with open(out, "w") as o, open(work / "registry.stderr", "w") as e:
        proc = subprocess.Popen([binary, "registry", "--listen", "127.0.0.1:0", "--data-dir", str(work / "reg")],
                                stdout=o, stderr=e)
    deadline = time.monotonic() + 30
    while "\n" not in out.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            fail("fleettwin registry printed no URL", [work / "registry.stderr"])
        time.sleep(0.05)
    return proc, out.read_text().split("\n", 1)[0].strip()


def produce_command(central):
    """An operator's command on central's fleet.commands (the JSON the API writes, src/codec/json_documents.cc)."""
    command = {"_id": f"mm2-{uuid.uuid4()}", "car": COMMAND_CAR, "name": "set_speed_limit", "params": {"kmh": 80},
               "created": int(time.time() * 1000), "expires": 0, "status": "pending"}
    value = json.dumps(command, separators=(",", ":")).encode()
    producer = Producer({"bootstrap.servers": central, "enable.idempotence": True})
    producer.produce("fleet.commands", key=COMMAND_CAR.encode(), value=value)
    assert producer.flush(30) == 0, "command not acknowledged by central"
    return value


def wait_replicated(site, central, topics):
    """Until central's <SITE>.<topic> has as many records per partition as the site's <topic>, for each topic."""
    deadline = time.monotonic() + REPLICATION_TIMEOUT_S
    for topic in topics:
        want = high_watermarks(site, topic)
        while high_watermarks(central, f"{SITE}.{topic}") != want:
            if time.monotonic() > deadline:
                got = high_watermarks(central, f"{SITE}.{topic}")
                raise AssertionError(f"{SITE}.{topic} on central: {got}, site's {topic}: {want}")
            time.sleep(0.5)


def check(site, central, registry):
    site_topics = topic_partitions(site)
    present = [t for t in SITE_TOPICS if t in site_topics]
    assert present == SITE_TOPICS, f"the site has only {present}"
    wait_replicated(site, central, present)
    central_topics = topic_partitions(central)
    for topic in present:
        remote = f"{SITE}.{topic}"
        assert central_topics.get(remote) == site_topics[topic], f"{remote}: partitions {central_topics.get(remote)}"
        mine, theirs = read_all(site, topic), read_all(central, remote)
        assert collections.Counter(mine) == collections.Counter(theirs), f"{remote} differs from the site's {topic}"
        print(f"ok: {remote} holds the site's {len(mine)} records of {topic}")

    schemas = {}
    on_site = collections.Counter()
    for _, _, value in read_all(site, "fleet.telemetry"):
        on_site[decode_telemetry(registry, value, schemas)] += 1
    on_central = collections.Counter()
    for _, key, value in read_all(central, f"{SITE}.fleet.telemetry"):
        car, seq = decode_telemetry(registry, value, schemas)
        assert key == car.encode(), f"key {key!r} != car {car!r}"
        on_central[(car, seq)] += 1
    assert len(on_site) == CARS * DURATION_S // INTERVAL_S, f"site holds {len(on_site)} (car, seq)"
    assert on_central == on_site, "central's (car, seq) counts differ from the site's"
    assert set(on_central.values()) == {1}, "a (car, seq) twice on central"
    print(f"ok: {len(on_central)} (car, seq) on central, each once, decoded with central's registry "
          f"(schema ids {sorted(schemas)})")


def check_command(site, value):
    deadline = time.monotonic() + REPLICATION_TIMEOUT_S
    while not any((high_watermarks(site, "fleet.commands") or {}).values()):
        assert time.monotonic() < deadline, "the command did not reach the site's fleet.commands"
        time.sleep(0.5)
    records = read_all(site, "fleet.commands")
    assert [(k, v) for _, k, v in records] == [(COMMAND_CAR.encode(), value)], f"site's fleet.commands: {records}"
    assert "central.fleet.commands" not in topic_partitions(site), "MM2 named the commands topic for central"
    print("ok: central's command is in the site's fleet.commands")


def answer_command(binary, site, work):
    """The site's car COMMAND_CAR, simulated alone in real time for a few seconds, reads the command from the
    site's fleet.commands and answers on fleet.command-acks (its telemetry goes to fleet.telemetry.raw, which stays
    at the edge)."""
    log = work / "sim.log"
    sim = subprocess.run([binary, "sim", "--kafka", site, "--cars", "1", "--interval", "1s", "--duration", "8s",
                          "--data-dir", str(work / "sim")], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         timeout=120)
    if sim.returncode != 0:
        fail(f"fleettwin sim exited {sim.returncode}", [log])


def check_ack(central, command):
    """The car's ack, copied back to central's <SITE>.fleet.command-acks."""
    command_id = json.loads(command)["_id"]
    acks = [json.loads(v) for _, _, v in read_all(central, f"{SITE}.fleet.command-acks")]
    assert [(a["id"], a["car"], a["status"]) for a in acks] == [(command_id, COMMAND_CAR, "acked")], f"acks {acks}"
    print(f"ok: the car's ack is in central's {SITE}.fleet.command-acks")


def main():
    binary = os.environ.get("FLEETTWIN_BIN", str(ROOT / "build" / "release" / "src" / "app" / "fleettwin"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="fleettwin-mm2-test."))
    brokers, registry, mm2, up_log, mm2_log = [], None, None, work / "up.log", None
    t0 = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(start_service, "kafka") for _ in range(2)]
            for f in starts:
                try:
                    brokers.append(f.result())
                except Exception as e:  # noqa: BLE001 (the other start's broker is still stopped below)
                    print(f"kafka start: {e}")
        if len(brokers) != 2:
            fail("a Kafka broker did not start")
        site, central = brokers
        registry, registry_url = start_registry(binary, work)

        # The site's run creates its topics (fleettwin's own settings, e.g. compacted fleet.twins) before MM2
        # starts, so MM2 copies them from its first listing.
        up = subprocess.run([binary, "up", "--kafka", site, "--schema-registry", registry_url, "--fast",
                             "--cars", str(CARS), "--interval", f"{INTERVAL_S}s", "--duration", f"{DURATION_S}s",
                             "--data-dir", str(work / "data"), "--http", "127.0.0.1:0"],
                            stdout=open(up_log, "w"), stderr=subprocess.STDOUT, timeout=180)
        if up.returncode != 0:
            fail(f"fleettwin up exited {up.returncode}", [up_log])
        print(f"site: up done at {time.monotonic() - t0:.1f} s")
        command = produce_command(central)

        started = subprocess.run([str(ROOT / "scripts" / "services" / "mirror-maker"), "start", SITE, site, central],
                                 stdout=subprocess.PIPE, text=True, timeout=180)
        if started.returncode != 0 or not started.stdout.strip():
            fail("scripts/services/mirror-maker start failed")
        mm2 = started.stdout.strip().splitlines()[-1]
        mm2_log = run_service("mirror-maker", "log", mm2)
        print(f"mm2: started at {time.monotonic() - t0:.1f} s")
        try:
            check_command(site, command)
            answer_command(binary, site, work)
            check(site, central, registry_url)
            check_ack(central, command)
        except AssertionError as e:
            fail(str(e), [up_log, mm2_log, work / "sim.log"])
        print(f"checked at {time.monotonic() - t0:.1f} s")
        print("PASS")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if mm2:
            run_service("mirror-maker", "stop", mm2)
        if registry is not None:
            terminate(registry, 15)
        for b in brokers:
            stop_service("kafka", b)


if __name__ == "__main__":
    main()
