"""What the interop tests share: where the repository and its service scripts are, the fleettwin binary under
test, the cardata-v1 signal names, and starting and stopping services and processes.

Run the tests with tests/interop/run; FLEETTWIN_BIN picks the binary (default build/release/src/app/fleettwin).
"""

import json
import os
import time
import signal
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = os.path.join(ROOT, "scripts", "services")

# The 18 cardata-v1 signals (DESIGN.md §4 Telemetry); the last five are ints, the rest doubles.
DOUBLE_SIGNALS = [
    "coolant_temp", "intake_air_temp", "intake_air_flow_speed", "battery_percentage", "battery_voltage",
    "current_draw", "speed", "engine_vibration_amplitude", "throttle_pos", "accelerometer_1_1_value",
    "accelerometer_1_2_value", "accelerometer_2_1_value", "accelerometer_2_2_value",
]
INT_SIGNALS = ["tire_pressure_1_1", "tire_pressure_1_2", "tire_pressure_2_1", "tire_pressure_2_2",
               "control_unit_firmware"]
SIGNALS = DOUBLE_SIGNALS + INT_SIGNALS


def fleettwin_bin():
    path = os.environ.get("FLEETTWIN_BIN", "build/release/src/app/fleettwin")
    if not os.path.isabs(path):
        path = os.path.join(ROOT, path)
    if not os.access(path, os.X_OK):
        pytest.fail(f"fleettwin binary not found at {path} (build it, or set FLEETTWIN_BIN)")
    return path


def start_service(name, *args, timeout=180):
    """Starts scripts/services/<name> and returns the address it prints last."""
    started = subprocess.run([os.path.join(SERVICES, name), "start", *args], stdout=subprocess.PIPE, text=True,
                             timeout=timeout)
    lines = started.stdout.strip().splitlines()
    assert started.returncode == 0 and lines, f"scripts/services/{name} start failed ({started.returncode})"
    return lines[-1].strip()


def stop_service(name, address):
    subprocess.run([os.path.join(SERVICES, name), "stop", address], stdout=subprocess.DEVNULL, timeout=60)


def terminate(proc, timeout):
    """SIGTERM, then SIGKILL if `proc` has not exited within `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stored_twin(binary, data_dir, car):
    """The twin of `car` as `fleettwin twin get` reads it from the store in `data_dir`."""
    out = subprocess.run([binary, "twin", "get", car, "--data-dir", str(data_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def start_up(args, log_path, timeout=90):
    """Starts `fleettwin up` with `args` (the binary first), its output in `log_path`, and waits until its cars
    have published (the progress line says so): the process, for the caller to stop with terminate()."""
    with open(log_path, "w") as log:
        up = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while "published" not in log_path.read_text():
        if up.poll() is not None or time.monotonic() >= deadline:
            terminate(up, 120)
            raise AssertionError("fleettwin up did not start publishing:\n" + log_path.read_text()[-3000:])
        time.sleep(0.2)
    return up
