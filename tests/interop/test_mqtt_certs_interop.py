"""Interop: a device written with Python paho-mqtt connects with its device certificate, as README.md says.

`fleettwin sim credentials --certs` writes a fleet CA and a certificate per car; a mosquitto broker started with
that directory (scripts/services/mosquitto start --auth DIR) requires a client certificate and takes the car id
from its CN. `fleettwin up --mqtt BROKER --credentials DIR` runs the embedded pipeline with its bridge (its own
certificate). The device presents ca.crt, cars/<id>.crt and cars/<id>.key, no user name or password; its
telemetry must reach its twin. A client without a certificate is refused.
"""

import json
import ssl
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from interop import fleettwin_bin, start_service, start_up, stop_service, stored_twin, terminate
from test_mqtt_interop import DEVICE, telemetry


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    binary = fleettwin_bin()
    work = tmp_path_factory.mktemp("mqtt-certs-interop")
    certs = work / "certs"
    broker = None
    try:
        subprocess.run([binary, "sim", "credentials", "--cars", "10", "--out", str(certs), "--certs"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        broker = start_service("mosquitto", "--auth", str(certs))
        yield {"bin": binary, "work": work, "certs": certs, "broker": broker}
    finally:
        if broker:
            stop_service("mosquitto", broker)


def client(certs, with_certificate):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
    if with_certificate:
        c.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(certs / "cars" / f"{DEVICE}.crt"),
                  keyfile=str(certs / "cars" / f"{DEVICE}.key"))
    else:
        c.tls_set(ca_certs=str(certs / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    return c


def test_a_device_without_a_certificate_is_refused(services):
    host, port = services["broker"].rsplit(":", 1)
    accepted = []
    c = client(services["certs"], with_certificate=False)
    c.on_connect = lambda _c, _u, _f, reason, _p: accepted.append(not reason.is_failure)
    try:
        c.connect(host, int(port))
        c.loop_start()
        time.sleep(3)  # TLS 1.3: the broker's refusal of a missing certificate comes after the handshake
        c.loop_stop()
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake
    assert True not in accepted


def test_paho_device_with_its_certificate_reaches_its_twin(services):
    host, port = services["broker"].rsplit(":", 1)
    data_dir = services["work"] / "data"
    log_path = services["work"] / "up.log"
    up = start_up(
        [services["bin"], "up", "--mqtt", services["broker"], "--credentials", str(services["certs"]),
         "--cars", "3", "--interval", "1s", "--duration", "30s", "--data-dir", str(data_dir), "--http", "",
         "--registry-listen", "127.0.0.1:0"],
        log_path)
    try:
        device = client(services["certs"], with_certificate=True)
        assert device.connect(host, int(port)) == mqtt.MQTT_ERR_SUCCESS
        device.loop_start()
        for seq in range(1, 6):
            info = device.publish(f"fleet/{DEVICE}/telemetry", telemetry(seq), qos=1)
            info.wait_for_publish(10)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
        device.loop_stop()
        device.disconnect()
        up.wait(120)
    finally:
        terminate(up, 120)
    assert up.returncode == 0, log_path.read_text()[-4000:]
    twin = stored_twin(services["bin"], data_dir, DEVICE)
    assert twin["_id"] == DEVICE
    assert twin["reported"]["seq"] == 5
