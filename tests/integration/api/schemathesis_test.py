#!/usr/bin/env python3
"""The REST API fuzzed against its own OpenAPI document by a third-party tool (issue 17).

Starts `fleettwin up` (a few simulated cars in real time, the embedded log and a SQLite store, an admin token,
a schema registry that requires tokens)
and runs schemathesis (PyPI, installed into the tools venv by scripts/setup) on the document the server
serves, with a bounded number of examples per operation and a fixed seed: every response must be no 5xx,
have a status code, content type and body the document lists for that operation. The live stream is left
out (an endless response). Exits non-zero on any failure, printing schemathesis's report and the server log.

Environment: FLEETTWIN_BIN (the binary), FLEETTWIN_CACHE (default ~/.cache/fleettwin; the tools venv is
there), SCHEMATHESIS_EXAMPLES (examples per operation, default 30).
"""
import os
import pathlib
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def wait_for_url(log_path, up, deadline):
    """The API's base URL, from the `dashboard: URL` line `up` prints once it serves."""
    while time.monotonic() < deadline:
        if up.poll() is not None:
            sys.exit(f"fleettwin up exited with {up.returncode}:\n{log_path.read_text()}")
        found = re.search(r"^dashboard: (http://[^/\s]+)/", log_path.read_text(), re.M)
        if found:
            return found.group(1)
        time.sleep(0.1)
    sys.exit("fleettwin up printed no dashboard URL:\n" + log_path.read_text())


def wait_for_twins(url, token, deadline):
    """Waits until the store holds twins, so the fuzzer meets real cars and not only 404s."""
    request = urllib.request.Request(f"{url}/api/v1/twins?limit=1", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if b'"_id"' in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("no twins in the store after the wait")


def main():
    binary = os.environ.get("FLEETTWIN_BIN", "build/release/src/app/fleettwin")
    cache = pathlib.Path(os.environ.get("FLEETTWIN_CACHE", pathlib.Path.home() / ".cache" / "fleettwin"))
    schemathesis = cache / "tools-venv" / "bin" / "schemathesis"
    if not schemathesis.exists():
        sys.exit(f"{schemathesis} is missing: run scripts/setup")
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="fleettwin-schemathesis-") as tmp:
        log_path = pathlib.Path(tmp) / "up.log"
        # The embedded registry requires tokens too: `up` then registers its schemas with a token of its own
        # (registry.token empty), which this run proves works end to end.
        env = dict(os.environ, FLEETTWIN_API_TOKENS=f"admin:{token}",
                   FLEETTWIN_REGISTRY_TOKENS=f"admin:{secrets.token_hex(16)}")
        with open(log_path, "w") as log:
            up = subprocess.Popen(
                [binary, "up", "--data-dir", f"{tmp}/data", "--http", "127.0.0.1:0", "--registry-listen",
                 "127.0.0.1:0", "--cars", "10", "--interval", "1s"],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            deadline = time.monotonic() + 120
            url = wait_for_url(log_path, up, deadline)
            wait_for_twins(url, token, deadline)
            run = subprocess.run(
                [str(schemathesis), "run", f"{url}/api/v1/openapi.yaml", "--url", url,
                 "--header", f"Authorization: Bearer {token}", "--checks", CHECKS,
                 "--exclude-path", "/api/v1/stream",
                 "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "30"), "--seed", "17",
                 "--workers", "2", "--phases", "examples,coverage,fuzzing", "--generation-database", "none",
                 "--no-color", "--request-timeout", "20"],
                timeout=600, check=False)
        finally:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
        if run.returncode != 0:
            print("--- fleettwin up log (tail) ---\n" + "\n".join(log_path.read_text().splitlines()[-60:]))
            print("schemathesis: 0 passed, 1 failed")
            return run.returncode
    print("schemathesis: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
