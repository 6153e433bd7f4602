#!/usr/bin/env python3
"""deploy/prometheus and deploy/grafana against Debian's real Prometheus and promtool (issue 21, items 3-4).

    monitoring_test.py config       promtool check config (local.yml, kubernetes.yml), check rules, test rules
                                    (tests/monitoring/rules_test.yml), and the dashboards' JSON shape
    monitoring_test.py embedded     Prometheus (scripts/services/prometheus) scrapes `fleettwin up --mqtt --http`:
                                    its target is up, and every dashboard panel's query parses and returns data
    monitoring_test.py distributed  Prometheus scrapes roles on Kafka (process, score, twin, sink, sim, bridge,
                                    registry with --metrics-listen; api on --listen): every target is up and
                                    each role's own counter moved

FLEETTWIN_BIN names the binary (default build/release/src/app/fleettwin). Standard library only. Exits 1 with
the failures (and the logs of the processes it ran) on stderr.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = os.path.join(ROOT, "scripts", "services")
DASHBOARDS = os.path.join(ROOT, "deploy", "grafana", "dashboards")
BIN = os.environ.get("FLEETTWIN_BIN", os.path.join(ROOT, "build", "release", "src", "app", "fleettwin"))


class Failure(Exception):
    pass


def check(ok, message):
    if not ok:
        raise Failure(message)


def run(*args, **kw):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, **kw)
    check(r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}")
    return r.stdout


# --- config: promtool and the dashboards' JSON ----------------------------------------------------------------

def dashboard_queries():
    """(dashboard file, panel title, expr) of every panel target of every dashboard."""
    out = []
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path) as f:
            board = json.load(f)
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((os.path.basename(path), panel["title"], target["expr"]))
    return out


def test_config(tmp):
    prom = os.path.join(ROOT, "deploy", "prometheus")
    # local.yml as scripts/services/prometheus fills it.
    with open(os.path.join(prom, "local.yml")) as f:
        local = f.read()
    local = (local.replace("@INTERVAL@", "1s").replace("@RULES@", os.path.join(prom, "rules"))
             .replace("@TARGETS@", tmp))
    check(not re.search(r"@[A-Z_]+@", local), "local.yml has a placeholder scripts/services/prometheus does not fill")
    with open(os.path.join(tmp, "local.yml"), "w") as f:
        f.write(local)
    run("promtool", "check", "config", os.path.join(tmp, "local.yml"))
    # kubernetes.yml: Debian's Prometheus is built without Kubernetes discovery, so its discovery block is
    # swapped for a file list; the relabelling and the rule files are checked as written.
    with open(os.path.join(prom, "kubernetes.yml")) as f:
        k8s = f.read()
    check("kubernetes_sd_configs:\n      - role: pod\n" in k8s, "kubernetes.yml: no pod discovery")
    k8s = k8s.replace("kubernetes_sd_configs:\n      - role: pod\n", "file_sd_configs:\n      - files: [t.json]\n")
    os.symlink(os.path.join(prom, "rules"), os.path.join(tmp, "rules"))
    with open(os.path.join(tmp, "kubernetes.yml"), "w") as f:
        f.write(k8s)
    run("promtool", "check", "config", os.path.join(tmp, "kubernetes.yml"))
    run("promtool", "check", "rules", *glob.glob(os.path.join(prom, "rules", "*.yml")))
    run("promtool", "test", "rules", "rules_test.yml", cwd=os.path.dirname(os.path.abspath(__file__)))
    # Every alert of the rules has a unit test.
    with open(os.path.join(prom, "rules", "fleettwin.yml")) as f:
        alerts = set(re.findall(r"^\s*- alert: (\w+)", f.read(), re.M))
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_test.yml")) as f:
        tested = set(re.findall(r"alertname: (\w+)", f.read()))
    check(alerts and alerts <= tested, f"alerts without a rule unit test: {sorted(alerts - tested)}")
    # The dashboards: unique uids, and every panel queries Prometheus through the datasource variable.
    uids = set()
    names = {os.path.basename(p) for p in glob.glob(os.path.join(DASHBOARDS, "*.json"))}
    check(names == {"fleet-overview.json", "pipeline.json", "front-door.json", "model.json"},
          f"dashboards: {sorted(names)}")
    for name in sorted(names):
        with open(os.path.join(DASHBOARDS, name)) as f:
            board = json.load(f)
        check(board["uid"] not in uids, f"{name}: uid {board['uid']} used twice")
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        check(len(ids) == len(set(ids)), f"{name}: panel ids repeat")
        for p in board["panels"]:
            check(p["targets"] and p["datasource"]["uid"] == "${datasource}", f"{name}: panel {p['title']}")
    print(f"config: promtool checks passed, {len(alerts)} alerts tested, {len(dashboard_queries())} queries")


# --- processes and Prometheus ---------------------------------------------------------------------------------

class Run:
    """The services and processes of one test, stopped (and their logs shown on failure) at the end."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.services = []  # (name, address)
        self.procs = []  # (name, Popen, log path)

    def service(self, name, *args):
        r = subprocess.run([os.path.join(SERVICES, name), "start", *args], stdout=subprocess.PIPE, text=True,
                           timeout=180)
        lines = r.stdout.strip().splitlines()
        check(r.returncode == 0 and lines, f"scripts/services/{name} start failed ({r.returncode})")
        self.services.append((name, lines[-1]))
        return lines[-1]

    def spawn(self, name, *args, env=None):
        log = os.path.join(self.tmp, name + ".log")
        with open(log, "w") as f:
            proc = subprocess.Popen([BIN, *args], stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})})
        self.procs.append((name, proc, log))
        return proc

    def url_in_log(self, name, prefix, timeout=60):
        """The first http://HOST:PORT the process `name` logs after `prefix`."""
        _, proc, log = next(p for p in self.procs if p[0] == name)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(log) as f:
                m = re.search(re.escape(prefix) + r"(http://[0-9.]+:[0-9]+)", f.read())
            if m:
                return m.group(1)
            check(proc.poll() is None, f"{name} exited ({proc.returncode}) before serving")
            time.sleep(0.2)
        raise Failure(f"{name} did not log '{prefix}http://...' within {timeout} s")

    def stop(self, failed):
        for name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if failed:
                with open(log) as f:
                    sys.stderr.write(f"----- {name} ({log}) -----\n{f.read()[-4000:]}\n")
        for name, address in reversed(self.services):
            subprocess.run([os.path.join(SERVICES, name), "stop", address], stdout=subprocess.DEVNULL, timeout=60)


def api(prometheus, path, **params):
    url = f"{prometheus}/api/v1/{path}?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:  # a query that does not parse: 400 with Prometheus's error
        body = json.load(e)
    check(body.get("status") == "success", f"{path} {params}: {body.get('error', body)}")
    return body["data"]


def wait_targets_up(prometheus, roles, timeout=60):
    """Waits until Prometheus has scraped one target of each role in `roles` with health up (and none down)."""
    deadline = time.time() + timeout
    while True:
        targets = api(prometheus, "targets", state="active")["activeTargets"]
        health = {(t["labels"].get("role"), t["scrapeUrl"]): (t["health"], t["lastError"]) for t in targets}
        if sorted(r for r, _ in health) == sorted(roles) and all(h == "up" for h, _ in health.values()):
            return health
        if time.time() > deadline:
            raise Failure(f"targets not all up within {timeout} s: {health}")
        time.sleep(0.5)


def query(prometheus, expr):
    return api(prometheus, "query", query=expr)["result"]


def eventually(what, predicate, timeout):
    deadline = time.time() + timeout
    while not predicate():
        check(time.time() < deadline, f"{what}: not within {timeout} s")
        time.sleep(0.5)


def check_dashboards(prometheus):
    """Every panel's query, with Grafana's $__rate_interval as 1m, parses and returns a sample."""
    # A rate needs two samples in its window: every target scraped a few times first.
    eventually("three scrapes of every target",
               lambda: query(prometheus, 'min(count_over_time(up{job="fleettwin"}[1m])) >= 3'), 30)
    empty = []
    queries = dashboard_queries()
    for board, title, expr in queries:
        result = query(prometheus, expr.replace("$__rate_interval", "1m"))
        if not result:
            empty.append(f"{board} / {title}: {expr}")
    check(not empty, "panel queries that return nothing:\n  " + "\n  ".join(empty))
    print(f"dashboards: {len(queries)} panel queries answered")


# --- embedded and distributed runs ----------------------------------------------------------------------------

# A first model after 10 s of event time, and drift measured once 200 events are in its window: the model
# dashboard's drift panels have data within a short run.
DRIFT_SOON = {"FLEETTWIN_ML_WARMUP": "10s", "FLEETTWIN_ML_DRIFT_WINDOW": "200"}

def test_embedded(r):
    prometheus = r.service("prometheus")
    # Cars over MQTT (local broker started by `up`): the bridge's metrics too. Real time, so a short run.
    r.spawn("up", "up", "--mqtt", "--cars", "20", "--interval", "1s", "--duration", "45s", "--http", "127.0.0.1:0",
            "--registry-listen", "127.0.0.1:0", "--data-dir", os.path.join(r.tmp, "up"), env=DRIFT_SOON)
    url = r.url_in_log("up", "dashboard: ")
    subprocess.run([os.path.join(SERVICES, "prometheus"), "targets", prometheus, "up=" + url[len("http://"):]],
                   check=True, timeout=30)
    print("targets:", wait_targets_up(prometheus, ["up"]))
    # Data in every panel: telemetry stored, and rates over at least two scrapes of it.
    eventually("telemetry stored", lambda: query(prometheus, "sum(fleettwin_telemetry_stored_total) > 0"), 40)
    eventually("drift per signal", lambda: query(prometheus, "count(fleettwin_drift_psi) > 0"), 40)
    check_dashboards(prometheus)


def test_distributed(r):
    kafka = r.service("kafka")
    mqtt = r.service("mosquitto")
    prometheus = r.service("prometheus")
    r.spawn("registry", "registry", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(r.tmp, "registry"),
            "--metrics-listen", "127.0.0.1:0")
    registry = r.url_in_log("registry", "")  # its first line: the REST API's URL, then its metrics'
    targets = ["registry=" + r.url_in_log("registry", "metrics: ")[len("http://"):]]
    common = ["--kafka", kafka, "--schema-registry", registry, "--kafka-set", "session.timeout.ms=6000",
              "--metrics-listen", "127.0.0.1:0"]
    store = os.path.join(r.tmp, "store")
    roles = {"process": [], "score": [], "twin": [], "sink": ["--data-dir", store],
             "bridge": ["--mqtt", mqtt]}
    for role, extra in roles.items():
        # The score role trains its own first model soon, so the model's panels (drift) have data.
        r.spawn(role, role, *common, *extra, *(["--train-warmup"] if role == "score" else []),
                env=DRIFT_SOON if role == "score" else None)
    targets += [f"{role}={r.url_in_log(role, 'metrics: ')[len('http://'):]}" for role in roles]
    # The simulator and its own endpoint: 200 cars in real time (it stays up to be scraped; stopped at the end).
    r.spawn("sim", "sim", *common, "--cars", "200", "--interval", "1s", "--duration", "5m",
            "--inject-invalid", "5", "--data-dir", os.path.join(r.tmp, "sim"))
    targets.append("sim=" + r.url_in_log("sim", "metrics: ")[len("http://"):])
    os.makedirs(store, exist_ok=True)
    r.spawn("api", "api", "--listen", "127.0.0.1:0", "--data-dir", store)
    targets.append("api=" + r.url_in_log("api", "dashboard: ")[len("http://"):])
    subprocess.run([os.path.join(SERVICES, "prometheus"), "targets", prometheus, *targets], check=True, timeout=30)
    health = wait_targets_up(prometheus, [t.split("=")[0] for t in targets])
    print("targets:", health)
    # Each role's own work, as Prometheus scraped it from that role's process.
    moved = [
        ("sim", 'fleettwin_sim_published_total{role="sim"}'),
        ("process", 'fleettwin_records_in_total{role="process",stage="process"}'),
        ("process", 'fleettwin_dlq_reason_total{role="process",stage="process"}'),  # the injected invalid payloads
        ("score", 'fleettwin_records_in_total{role="score",stage="score"}'),
        ("twin", 'fleettwin_records_in_total{role="twin",stage="twin"}'),
        ("sink", 'fleettwin_telemetry_stored_total{role="sink"}'),
        ("bridge", 'fleettwin_bridge_connections{role="bridge"}'),
        ("registry", 'fleettwin_registry_requests_total{role="registry"}'),
        ("score", 'fleettwin_drift_psi{role="score"}'),  # a model trained, and live traffic compared with it
    ]
    for role, metric in moved:
        expr = f"sum({metric}) > 0"
        # The drift gauge waits for the score role's warm-up model: 10 s of events, then a training at nice 10.
        timeout = 150 if "drift" in metric else 60
        eventually(f"{expr} in Prometheus", lambda e=expr: query(prometheus, e), timeout)
    check(query(prometheus, 'up{role="api"} == 1'), "api not up")
    print(f"roles: {', '.join(sorted({role for role, _ in moved}))} moved their counters")
    check_dashboards(prometheus)  # the same panels over the roles' separate processes


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    check(mode in ("config", "embedded", "distributed"), "usage: monitoring_test.py config|embedded|distributed")
    check(shutil.which("promtool") and shutil.which("prometheus"), "promtool/prometheus missing: scripts/setup")
    tmp = tempfile.mkdtemp(prefix="fleettwin-monitoring.")
    failed = True
    r = Run(tmp)
    try:
        if mode == "config":
            test_config(tmp)
        else:
            check(os.access(BIN, os.X_OK), f"fleettwin binary not found at {BIN} (set FLEETTWIN_BIN)")
            (test_embedded if mode == "embedded" else test_distributed)(r)
        failed = False
    finally:
        r.stop(failed)
        if not failed:
            shutil.rmtree(tmp, ignore_errors=True)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        sys.stderr.write(f"FAILED: {e}\n")
        sys.exit(1)
