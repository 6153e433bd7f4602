// Browser end-to-end tests of the dashboard: headless Debian chromium driven by playwright-core against a
// running `fleettwin up --fast`. Each test saves a screenshot in $FLEETTWIN_E2E_OUT.
// Run by ctest (label e2e): node --test tests/e2e/browser/dashboard.test.mjs
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

const source = process.env.FLEETTWIN_SOURCE_DIR ?? path.resolve(import.meta.dirname, "../../..");
const bin = process.env.FLEETTWIN_BIN ?? path.join(source, "build/release/src/app/fleettwin");
const out = process.env.FLEETTWIN_E2E_OUT ?? fs.mkdtempSync(path.join(os.tmpdir(), "fleettwin-e2e-out-"));
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const { chromium } = createRequire(path.join(source, "web/package.json"))("playwright-core");

const ADMIN = "e2e-admin-token";
const VIEWER = "e2e-viewer-token";
let up, url, browser, log = "";
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "fleettwin-e2e-web-"));
// The dashboard's aggregates under their shipped names, with windows short enough to close within this run
// (`up --fast` runs event time about a hundred times the wall clock here): the charts then show windows `up`
// itself produced, through the aggregate stage, fleet.aggregates and the sink.
const definitions = path.join(dataDir, "aggregates.yaml");
fs.writeFileSync(
  definitions,
  `aggregates:
  - {name: events_5m, group: car, window: 10s}
  - name: summary_1h
    group: car
    window: 1m
    signals: {speed: [mean, max], coolant_temp: [max, p95]}
`,
);

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  assert.ok(fs.existsSync(path.join(source, "web/dist/index.html")), "web/dist is not built: run scripts/build");
  up = spawn(bin, ["up", "--fast", "--cars", "300", "--interval", "1s", "--failure-rate", "20", "--failure-ramp", "10s",
    "--data-dir", dataDir, "--http", "127.0.0.1:0", "--registry-listen", "127.0.0.1:0"], {
    env: {
      ...process.env,
      FLEETTWIN_API_TOKENS: `admin:${ADMIN},viewer:${VIEWER}`,
      // The trainer's candidates (models page): a short window, so a requested one trains in seconds.
      FLEETTWIN_ML_TRAIN_WINDOW: "10m",
      FLEETTWIN_ML_TRAIN_MAX_EVENTS: "60000",
      // Drift is measured (the drift test reads it) but asks for no retraining here: the warm-up model's few
      // minutes of battery readings drift at once, and the models test follows the candidate it requests.
      FLEETTWIN_ML_DRIFT_FOR: "365d",
      FLEETTWIN_AGGREGATE_DEFINITIONS: definitions,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard URL from fleettwin up within 60 s:\n${log}`)), 60000);
    up.stderr.on("data", (chunk) => {
      log += chunk;
      const m = /dashboard: (http:\/\/[0-9.:]+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    up.on("exit", (code) => reject(new Error(`fleettwin up exited with ${code}:\n${log}`)));
  });
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  if (up && up.exitCode === null) {
    up.kill("SIGTERM");
    await new Promise((r) => up.once("exit", r));
  }
  fs.writeFileSync(path.join(out, "fleettwin-up.log"), log);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/// Opens the dashboard logged in with `token`, runs `fn`, and saves a screenshot `<shot>.png` whatever
/// happened (full page, so a failure shows the whole state).
async function withPage(shot, fn, token = ADMIN) {
  const p = await page(shot, token);
  try {
    await fn(p);
  } finally {
    await p.screenshot({ path: path.join(out, `${shot}.png`), fullPage: true });
    await p.context().close();
  }
}

async function page(name, token = ADMIN) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const p = await context.newPage();
  p.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  await p.goto(`${url}/#token=${token}`);
  return p;
}


test("overview shows cars and message rate", async () => {
  await withPage("overview", async (p) => {
    // The tiles are live: msg/s can dip to 0 between two updates, so keep the value that was seen
    // rather than reading the tile again afterwards.
    const seen = async (tile) =>
      (await p.waitForFunction((t) => {
        const v = Number(document.querySelector(`[data-tile="${t}"]`)?.textContent?.replace(/,/g, ""));
        return v > 0 ? v : null;
      }, tile, { timeout: 60000 })).jsonValue();
    assert.ok((await seen("cars")) > 0);
    assert.ok((await seen("msgs")) > 0);
    assert.equal(await p.locator(".chart canvas").count() >= 2, true);
  });
});

test("map draws every car and a click opens the car", async () => {
  await withPage("map-click", async (p) => {
    await p.goto(`${url}/#/map`);
    await p.waitForFunction(() => /^[1-9][0-9,]* cars/.test(document.querySelector(".map-info")?.textContent ?? ""), null, { timeout: 60000 });
    await p.screenshot({ path: path.join(out, "map.png") });
    // Find a drawn dot by its colour and click it in the same task (cars move between frames).
    const hit = await p.evaluate(() => {
      const c = document.getElementById("map");
      const img = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      const dpr = window.devicePixelRatio || 1;
      const rect = c.getBoundingClientRect();
      for (let y = 0; y < c.height; y += 1)
        for (let x = 0; x < c.width; x += 1) {
          const i = (y * c.width + x) * 4;
          if (img[i] + img[i + 1] + img[i + 2] > 200) {
            const at = { clientX: rect.left + x / dpr + 1, clientY: rect.top + y / dpr + 1, bubbles: true };
            c.dispatchEvent(new MouseEvent("mousedown", at));
            c.dispatchEvent(new MouseEvent("mouseup", at));
            return true;
          }
        }
      return false;
    });
    assert.ok(hit, "no dot drawn on the map");
    await p.waitForURL(/#\/car\//, { timeout: 10000 });
  });
});

test("clicking a car in the list opens its page with a history chart", async () => {
  await withPage("car", async (p) => {
    await p.locator("#top-cars a.car-link").first().waitFor({ timeout: 30000 });
    const car = await p.locator("#top-cars a.car-link").first().textContent();
    await p.locator("#top-cars a.car-link").first().click();
    await p.waitForURL(new RegExp(`#/car/${car}`));
    await p.waitForFunction(() => Number(document.getElementById("history")?.dataset.points ?? 0) > 0, null, { timeout: 30000 });
    assert.equal(await p.locator("#history canvas").count() >= 1, true);
    assert.equal((await p.textContent("h1")).trim(), car);
    // The signal list is the server's catalog (GET /api/v1/catalog), the history's default first.
    await p.waitForFunction(() => document.querySelectorAll("#signal option").length > 1, null, { timeout: 10000 });
    const signals = await p.locator("#signal option").evaluateAll((os) => os.map((o) => o.value));
    assert.equal(signals[0], "speed");
    assert.ok(signals.includes("coolant_temp") && signals.includes("control_unit_firmware"), signals.join(","));
    // The reported table follows the catalog too: every signal under its part, with its unit.
    await p.waitForFunction(() => document.querySelectorAll("#reported tr.part").length > 0, null, { timeout: 10000 });
    const parts = await p.locator("#reported tr.part").evaluateAll((rs) => rs.map((r) => r.textContent.trim()));
    assert.ok(parts.includes("cooling") && parts.includes("tyres"), parts.join(","));
    const coolant = await p.locator('#reported tr[data-signal="coolant_temp"] td').textContent();
    assert.match(coolant, /°C/);
  });
});

test("the car page and the overview chart window aggregates", async () => {
  // The car's twin once it has one (the simulated cars start over the first seconds).
  let twin = null;
  for (let tries = 0; tries < 120 && !(twin?.connection?.last_seen > 0); tries++) {
    const r = await fetch(`${url}/api/v1/twins/car-00003`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    twin = r.ok ? await r.json() : null;
    if (!(twin?.connection?.last_seen > 0)) await new Promise((done) => setTimeout(done, 500));
  }
  assert.ok(twin?.connection?.last_seen > 0, JSON.stringify(twin));
  // Windows `up` wrote: each of the car's 10 s windows holds at most its ten messages (1 s interval), and the
  // fleet total of a window counts every car that sent in it.
  const api = async (route) => {
    const r = await fetch(`${url}${route}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 200, route);
    return r.json();
  };
  let own = null;
  for (let tries = 0; tries < 120 && !(own?.windows?.length >= 12); tries++) {
    own = await api("/api/v1/aggregates/events_5m?car=car-00003");
    if (!(own.windows.length >= 12)) await new Promise((done) => setTimeout(done, 500));
  }
  assert.ok(own.windows.length >= 12, JSON.stringify(own).slice(0, 400));
  for (const w of own.windows) {
    assert.equal(w.group, "car-00003");
    assert.equal(w.end - w.start, 10000);
    assert.ok(w.count >= 1 && w.count <= 10, JSON.stringify(w));
    assert.ok(w.revision >= 1);
  }
  const last = own.windows[own.windows.length - 3]; // every car has passed it by now
  const total = await api(`/api/v1/aggregates/events_5m/total?from=${last.start}&to=${last.start + 1}`);
  assert.equal(total.windows.length, 1);
  assert.ok(total.windows[0].groups >= 2 && total.windows[0].count >= last.count, JSON.stringify(total));
  await withPage("car-windows", async (p) => {
    await p.goto(`${url}/#/car/car-00003`);
    const windows = (id) =>
      p
        .waitForFunction(
          (i) =>
            Number(document.getElementById(i)?.dataset.windows ?? 0) > 0
              ? Number(document.getElementById(i).dataset.windows)
              : null,
          id,
          { timeout: 30000 },
        )
        .then((h) => h.jsonValue());
    assert.ok((await windows("car-windows-hourly")) >= 6);
    assert.ok((await windows("car-windows-events")) >= 12);
    assert.equal(await p.locator("#car-windows-hourly canvas").count(), 1);
  });
  await withPage("overview-windows", async (p) => {
    await p.waitForFunction(
      () =>
        Number(
          document.getElementById("fleet-windows")?.dataset.windows ?? 0,
        ) >= 12,
      null,
      { timeout: 30000 },
    );
    assert.equal(await p.locator("#fleet-windows canvas").count(), 1);
  });
});

test("a viewer cannot send commands", async () => {
  await withPage("viewer", async (p) => {
    await p.goto(`${url}/#/car/car-00001`);
    await p.locator("#send-desired").waitFor();
    assert.equal(await p.locator("#send-desired").isDisabled(), true);
    const r = await p.evaluate(async (t) => (await fetch("api/v1/twins/car-00001/desired", {
      method: "PATCH", headers: { Authorization: `Bearer ${t}` }, body: '{"speed_limit_kmh":50}' })).status, VIEWER);
    assert.equal(r, 403);
  }, VIEWER);
});

test("setting a speed limit is acknowledged by the car and the delta clears", async () => {
  await withPage("command", async (p) => {
    await p.goto(`${url}/#/car/car-00002`);
    await p.locator("#desired-form input[name=speed_limit_kmh]").fill("77");
    await p.locator("#send-desired").click();
    await p.waitForFunction(() => /set_speed_limit/.test(document.getElementById("command-status")?.textContent ?? ""), null, { timeout: 10000 });
    await p.waitForFunction(() => /set_speed_limit: acked/.test(document.getElementById("command-status")?.textContent ?? ""), null, { timeout: 60000 });
    await p.waitForFunction(() => document.getElementById("delta")?.textContent === "none", null, { timeout: 30000 });
  });
});

test("an alert can be acknowledged", async () => {
  await withPage("alerts", async (p) => {
    await p.goto(`${url}/#/alerts`);
    // Simulated failures (20 per car-hour, 10 s ramp) make the score stage raise alerts soon.
    const ack = p.locator("button.ack").first();
    await ack.waitFor({ timeout: 120000 });
    const id = await ack.getAttribute("data-alert");
    await ack.click();
    await p.locator("#alert-status").selectOption("acknowledged");
    await p.locator(`tr[data-alert-row="${id}"] .badge.acknowledged`).waitFor({ timeout: 10000 });
  });
});

test("the models page shows model cards and their lineage; a requested candidate joins the line", async () => {
  await withPage("models", async (p) => {
    const card = async (selector, timeout) => {
      const until = Date.now() + timeout;
      for (;;) {
        await p.goto(`${url}/#/models`);
        await p.reload();
        try {
          return await p.locator(selector).first().waitFor({ timeout: 5000 }).then(() => p.locator(selector).first());
        } catch (e) {
          if (Date.now() > until) throw e;
        }
      }
    };
    // The score stage's warm-up model (ml.warmup of simulated time) is the first card: active, no trial.
    const active = await card('section.model-card[data-role="active"]', 180000);
    const first = await active.getAttribute("data-version");
    assert.match(await active.textContent(), /Trained on.*events of [1-9][0-9,]* cars/);
    assert.match(await p.locator(".lineage-line").first().textContent(), new RegExp(first));
    // An admin asks for a candidate: the trainer trains it from its window and puts it in shadow (then the
    // gate, on simulated time, may already have promoted or refused it), its lineage naming the active model.
    await p.locator("#retrain").click();
    await p.waitForFunction(() => /retrain requested/.test(document.getElementById("models-status")?.textContent ?? ""));
    const child = await card(`section.model-card:not([data-version="${first}"])`, 240000);
    assert.match(await child.textContent(), new RegExp(`from ${first}.*trigger: api`));
    assert.match(await p.locator(".lineage-line").first().textContent(), new RegExp(`${first} → `));
  });
});

test("an operator labels an alert false and the label is still there after a reload", async () => {
  await withPage("alert-feedback", async (p) => {
    await p.goto(`${url}/#/alerts`);
    await p.locator("#alert-status").selectOption("all");
    // An anomaly alert (ids are car:kind:ts): it names the model version that raised it.
    const button = p.locator(`tr[data-alert-row*=":anomaly:"] button.feedback-false`).first();
    await button.waitFor({ timeout: 120000 });
    const id = await button.getAttribute("data-alert");
    await button.click();
    const label = p.locator(`tr[data-alert-row="${id}"] .badge.feedback-false`);
    await label.waitFor({ timeout: 10000 });
    // From the store, not the page's memory: a reload reads the alerts again. Acknowledged too (through the
    // API), so the short acknowledged list holds it whatever the flood of newer alerts in "all".
    const acked = await p.evaluate(async ([t, alert]) =>
      (await fetch(`api/v1/alerts/${encodeURIComponent(alert)}/ack`, { method: "POST", headers: { Authorization: `Bearer ${t}` } })).status,
      [ADMIN, id]);
    assert.equal(acked, 200);
    await p.reload();
    await p.goto(`${url}/#/alerts`);
    await p.locator("#alert-status").selectOption("acknowledged");
    await label.waitFor({ timeout: 10000 });
    assert.equal(await p.locator(`tr[data-alert-row="${id}"] button.feedback-false`).count(), 0);
    // The model version's live precision counts it.
    const counts = await p.evaluate(async ([t, alert]) => {
      const h = { Authorization: `Bearer ${t}` };
      const a = await (await fetch(`api/v1/alerts?status=all&limit=10000`, { headers: h })).json();
      const version = a.items.find((x) => x._id === alert).model_version;
      return (await fetch(`api/v1/models/${encodeURIComponent(version)}/feedback`, { headers: h })).json();
    }, [ADMIN, id]);
    assert.ok(counts.false >= 1, JSON.stringify(counts));
    assert.ok(counts.precision !== null && counts.precision < 1, JSON.stringify(counts));
  });
});

test("the models page shows the drift of live traffic per signal", async () => {
  await withPage("models-drift", async (p) => {
    await p.goto(`${url}/#/models`);
    // Last: by now the warm-up model scores (the alert tests waited for its alerts), and the drift watch
    // compares its window with the model's training deciles; the page refreshes every 10 s.
    await p.locator('#drift[data-measured="true"] tr[data-signal]').first().waitFor({ timeout: 180000 });
    const signals = await p.locator("#drift tr[data-signal]").evaluateAll((rs) => rs.map((r) => r.dataset.signal));
    assert.ok(signals.includes("coolant_temp"), signals.join(","));
    const psi = Number(await p.locator('#drift tr[data-signal="coolant_temp"] .badge').textContent());
    assert.ok(psi >= 0, `PSI ${psi}`);
  });
});
