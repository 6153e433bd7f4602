"""Interop: a device written with Python paho-mqtt talks to fleettwin the way a simulated car does.

The device uses the fleet's credentials scheme (`fleettwin sim credentials`: username = car id, password =
hex(HMAC-SHA256(secret, car id))[:32]) against a mosquitto broker started with that password file and ACL
(scripts/services/mosquitto start --auth DIR). `fleettwin up --kafka ... --mqtt ...` runs the pipeline with its
bridge. The device publishes telemetry (QoS 1) that must reach its twin, and receives a command that
confluent-kafka writes to fleet.commands, applies it and acknowledges it on fleet/{car}/acks; the twin then
shows the setting as desired and reported, with an empty delta.
"""

import hashlib
import hmac
import json
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import Producer

from interop import (INT_SIGNALS, SIGNALS, fleettwin_bin, start_service, start_up, stop_service, stored_twin,
                     terminate)

DEVICE = "car-00009"  # in the credentials (10 cars), not driven by the simulator (5 cars)


def telemetry(seq):
    """A valid cardata-v1 payload (DESIGN.md §4 Telemetry) as a device would send it."""
    msg = {"car": DEVICE, "ts": int(time.time() * 1000), "seq": seq, "lat": 48.137, "lon": 11.575}
    for s in SIGNALS:
        msg[s] = 30 if s in INT_SIGNALS else 1.5
    msg["control_unit_firmware"] = 1200
    msg["battery_percentage"] = 80.0
    msg["battery_voltage"] = 12.6
    msg["speed"] = 12.0
    msg["throttle_pos"] = 0.2
    msg["coolant_temp"] = 90.0
    msg["intake_air_temp"] = 25.0
    return json.dumps(msg)


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    binary = fleettwin_bin()
    work = tmp_path_factory.mktemp("mqtt-interop")
    creds = work / "creds"
    kafka = broker = None
    try:
        subprocess.run([binary, "sim", "credentials", "--cars", "10", "--out", str(creds)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        kafka = start_service("kafka")
        broker = start_service("mosquitto", "--auth", str(creds))
        yield {"bin": binary, "work": work, "creds": creds, "kafka": kafka, "broker": broker}
    finally:
        if broker:
            stop_service("mosquitto", broker)
        if kafka:
            stop_service("kafka", kafka)


def test_paho_device_reaches_its_twin_and_acknowledges_a_command(services):
    secret = (services["creds"] / "secret").read_text().strip()
    password = hmac.new(secret.encode(), DEVICE.encode(), hashlib.sha256).hexdigest()[:32]
    host, port = services["broker"].rsplit(":", 1)
    data_dir = services["work"] / "data"
    log_path = services["work"] / "up.log"
    up = start_up(
        [services["bin"], "up", "--kafka", services["kafka"], "--mqtt", services["broker"], "--credentials",
         str(services["creds"]), "--cars", "5", "--interval", "1s", "--duration", "60s", "--data-dir",
         str(data_dir), "--http", "", "--registry-listen", "127.0.0.1:0"],
        log_path)
    try:
        acked = threading.Event()
        got = {}

        def on_message(client, userdata, msg):
            command = json.loads(msg.payload)
            got["command"] = command
            settings = {"speed_limit_kmh": command["params"]["kmh"]}
            ack = {"id": command["_id"], "car": DEVICE, "status": "acked", "ts": int(time.time() * 1000),
                   "reported": settings}
            client.publish(f"fleet/{DEVICE}/acks", json.dumps(ack), qos=1).wait_for_publish(10)
            acked.set()

        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
        device.username_pw_set(DEVICE, password)
        device.on_message = on_message
        assert device.connect(host, int(port)) == mqtt.MQTT_ERR_SUCCESS
        device.loop_start()
        device.subscribe(f"fleet/{DEVICE}/commands", qos=1)
        for seq in range(1, 6):
            info = device.publish(f"fleet/{DEVICE}/telemetry", telemetry(seq), qos=1)
            info.wait_for_publish(10)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS

        command = {"_id": "py-cmd-1", "car": DEVICE, "name": "set_speed_limit", "params": {"kmh": 42},
                   "created": int(time.time() * 1000), "expires": 0, "status": "pending"}
        producer = Producer({"bootstrap.servers": services["kafka"]})
        producer.produce("fleet.commands", key=DEVICE, value=json.dumps(command))
        assert producer.flush(30) == 0
        assert acked.wait(60), "the command never reached the device"
        assert got["command"]["name"] == "set_speed_limit"
        time.sleep(3)  # the ack travels bridge -> fleet.command-acks -> twin -> store
        device.loop_stop()
        device.disconnect()
    finally:
        terminate(up, 120)
    assert up.returncode == 0, log_path.read_text()[-4000:]

    twin = stored_twin(services["bin"], data_dir, DEVICE)
    assert twin["_id"] == DEVICE
    assert twin["reported"]["seq"] == 5
    assert twin["reported"]["speed"] == 12.0
    assert twin["desired"] == {"speed_limit_kmh": 42}
    assert twin["reported"]["settings"] == {"speed_limit_kmh": 42}
    assert twin["delta"] == []
