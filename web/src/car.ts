// One car: the twin (reported signals by part of the car, as the server's signal catalog lists them, with
// out-of-range readings marked; desired / delta), sensor history with the anomaly score and threshold
// overlaid and alert markers, the top contributing signals, and the desired-settings form.
import uPlot from "uplot";
import { el, fmt, get, live, send, time, type Body, type Catalog, type Twin } from "./api";
import { Disposer, type Page } from "./page";
import { carWindows } from "./windows";

// The history chart's first choice, as the history API's default signal (a catalog may name it otherwise,
// e.g. Vehicle.Speed with the alias speed).
const DEFAULT_SIGNAL = "speed";

/** The catalog's signal meaning `key` (its name or an alias), or undefined. */
function signalOf(catalog: Catalog, key: string) {
  return catalog.signals.find((s) => s.name === key || s.aliases.includes(key));
}

/** The catalog's signal names, the default first. */
function signalNames(catalog: Catalog): string[] {
  const first = signalOf(catalog, DEFAULT_SIGNAL)?.name ?? catalog.signals[0]?.name ?? DEFAULT_SIGNAL;
  return [first, ...catalog.signals.map((s) => s.name).filter((n) => n !== first)];
}

/** The reported table: the envelope (ts, seq, position) first, then every catalog signal grouped by part,
 * with its unit; a reading outside its plausible range is kept by the platform and marked here. */
function reportedRows(rep: Twin["reported"], catalog: Catalog | null): HTMLElement[] {
  const flags = new Set<string>(rep.flags ?? []);
  const known = new Set(["settings", "flags", ...(catalog?.signals.map((s) => s.name) ?? [])]);
  const rows = Object.entries(rep)
    .filter(([k]) => !known.has(k))
    .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, cell(k, v))));
  if (!catalog) return rows;
  // Parts in the order the catalog first names them; each part's signals in catalog order.
  const parts = [...new Set(catalog.signals.map((s) => s.part))];
  const byPart = parts.flatMap((part) => catalog.signals.filter((s) => s.part === part));
  for (const [i, s] of byPart.entries()) {
    if (i === 0 || byPart[i - 1].part !== s.part)
      rows.push(el("tr", { class: "part" }, el("th", { colspan: "2" }, s.part)));
    const v = rep[s.name];
    const flagged = flags.has(s.name) || flags.has(s.field);
    rows.push(
      el(
        "tr",
        { class: flagged ? "flagged" : "", "data-signal": s.name, title: s.description },
        el("th", {}, s.name),
        el(
          "td",
          {},
          v === undefined || v === null ? "–" : `${cell(s.name, v)} ${s.unit}`,
          flagged ? el("span", { class: "badge anomaly" }, "out of range") : "",
        ),
      ),
    );
  }
  return rows;
}

function cell(k: string, v: unknown): string {
  if (typeof v !== "number") return JSON.stringify(v);
  if (k === "ts") return time(v);
  if (k === "seq") return String(v);
  return fmt(v, Number.isInteger(v) ? 0 : 3);
}

export function carPage(root: HTMLElement, car: string, role: string): Page {
  const d = new Disposer();
  const head = el("h1", {}, car);
  const status = el("div", { class: "car-status" });
  const reported = el("table", { class: "kv", id: "reported" });
  const desired = el("table", { class: "kv", id: "desired" });
  const top = el("ul", { id: "top-signals" });
  const signalSel = el("select", { id: "signal" });
  signalSel.append(el("option", { value: DEFAULT_SIGNAL }, DEFAULT_SIGNAL));
  const chartBox = el("div", { class: "chart", id: "history" });
  const form = el("form", { id: "desired-form" });
  const formMsg = el("div", { class: "muted", id: "command-status" });
  const windows = carWindows(car);
  d.add(() => windows.destroy());
  root.append(
    el("p", {}, el("a", { href: "#/overview" }, "← fleet")),
    head,
    status,
    el(
      "section",
      { class: "car-grid" },
      el("div", {}, el("h2", {}, "Reported"), reported),
      el(
        "div",
        {},
        el("h2", {}, "Desired / delta"),
        desired,
        el("h2", {}, "Top signals"),
        top,
        el("h2", {}, "Set desired"),
        form,
        formMsg,
      ),
    ),
    el("h2", {}, "History ", signalSel),
    chartBox,
    el("h2", {}, "Windows"),
    windows.section,
  );

  let catalog: Catalog | null = null;
  let lastTwin: Twin | null = null;
  const renderTwin = (t: Twin) => {
    lastTwin = t;
    const h = t.health;
    const c = t.connection;
    status.replaceChildren(
      el("span", { class: `badge ${h.status}` }, h.status),
      ` score ${fmt(h.score, 3)} / threshold ${fmt(h.threshold, 3)} · ${c.online ? "online" : "offline"} · last seen ${c.last_seen ? time(c.last_seen) : "–"} · ${fmt(t.stats.messages)} messages`,
    );
    const rep = t.reported;
    reported.replaceChildren(el("tbody", {}, ...reportedRows(rep, catalog)));
    const delta = t.delta;
    const keys = new Set([...Object.keys(t.desired), ...Object.keys(rep.settings)]);
    desired.replaceChildren(
      el(
        "tbody",
        {},
        el("tr", {}, el("th", {}, "setting"), el("th", {}, "desired"), el("th", {}, "reported")),
        ...[...keys].map((k) =>
          el(
            "tr",
            { class: delta.includes(k) ? "delta" : "", "data-setting": k },
            el("th", {}, k),
            el("td", {}, JSON.stringify(t.desired[k] ?? null)),
            el("td", {}, JSON.stringify(rep.settings[k] ?? null)),
          ),
        ),
        el(
          "tr",
          {},
          el("th", {}, "delta"),
          el("td", { id: "delta", colspan: "2" }, delta.length ? delta.join(", ") : "none"),
        ),
      ),
    );
    top.replaceChildren(...h.top_signals.map((s) => el("li", {}, s)));
    if (!h.top_signals.length) top.append(el("li", { class: "muted" }, "none (no model yet)"));
  };
  const loadTwin = async () => renderTwin(await get("/api/v1/twins/{car}", { car }));

  // History chart: the signal on the left axis, score and threshold on the right, alerts as red lines.
  let chart: uPlot | null = null;
  let alertTs: number[] = [];
  const loadHistory = async () => {
    const h = await get("/api/v1/twins/{car}/history", { car }, { signal: signalSel.value });
    const xs = h.ts.map((t) => t / 1000);
    const data: uPlot.AlignedData = [xs, h.signals[signalSel.value] ?? [], h.score, xs.map(() => h.threshold || null)];
    alertTs = h.alerts.filter((a) => a.raised).map((a) => a.ts / 1000);
    if (!chart) {
      chart = new uPlot(
        {
          width: Math.max(320, chartBox.clientWidth || 800),
          height: 300,
          series: [
            {},
            { label: signalSel.value, stroke: "#4c8dff", width: 2 },
            { label: "anomaly score", stroke: "#e5484d", scale: "score" },
            { label: "threshold", stroke: "#f2a93b", dash: [6, 4], scale: "score" },
          ],
          axes: [{}, {}, { side: 1, scale: "score", grid: { show: false } }],
          hooks: {
            draw: [
              (u) => {
                const c = u.ctx;
                c.save();
                c.strokeStyle = "rgba(229,72,77,0.8)";
                c.lineWidth = 2;
                for (const t of alertTs) {
                  const x = u.valToPos(t, "x", true);
                  c.beginPath();
                  c.moveTo(x, u.bbox.top);
                  c.lineTo(x, u.bbox.top + u.bbox.height);
                  c.stroke();
                }
                c.restore();
              },
            ],
          },
        },
        data,
        chartBox,
      );
      d.add(() => chart?.destroy());
    } else {
      chart.setSeries(1, { label: signalSel.value } as uPlot.Series);
      chart.setData(data);
    }
    chartBox.dataset.points = String(xs.length);
  };
  signalSel.onchange = () => {
    chart?.destroy();
    chart = null;
    loadHistory().catch(() => undefined);
  };

  // Desired settings (operators): one command per changed setting; their status is polled until acked.
  const canCommand = role === "operator" || role === "admin";
  const speed = el("input", {
    name: "speed_limit_kmh",
    type: "number",
    min: "0",
    max: "250",
    step: "1",
    placeholder: "km/h",
  });
  const firmware = el("input", {
    name: "firmware_version",
    type: "number",
    min: "0",
    max: "100000",
    step: "1",
    placeholder: "version",
  });
  const service = el("input", { name: "service", type: "checkbox" });
  form.append(
    el("label", {}, "speed limit ", speed),
    el("label", {}, "firmware ", firmware),
    el("label", {}, service, " schedule service"),
    el("button", { type: "submit", id: "send-desired" }, "send"),
  );
  if (!canCommand) {
    form.querySelectorAll("input,button").forEach((e) => e.setAttribute("disabled", ""));
    formMsg.textContent = "Your token is read-only (viewer).";
  }
  form.onsubmit = async (e) => {
    e.preventDefault();
    const body: Body<"/api/v1/twins/{car}/desired", "patch"> = {};
    if (speed.value) body.speed_limit_kmh = Number(speed.value);
    if (firmware.value) body.firmware_version = Number(firmware.value);
    if (service.checked) body.service = true;
    if (!Object.keys(body).length) return;
    try {
      const r = await send("patch", "/api/v1/twins/{car}/desired", { car }, body);
      formMsg.textContent = r.commands.length ? `sent: ${r.commands.join(", ")}` : "nothing changed";
      watchCommands(r.commands);
      await loadTwin();
    } catch (err) {
      formMsg.textContent = err instanceof Error ? err.message : String(err);
    }
  };
  const watchCommands = (ids: string[]) => {
    let tries = 0;
    const tick = async () => {
      const states: string[] = [];
      for (const id of ids) {
        try {
          const c = await get("/api/v1/commands/{id}", { id });
          states.push(`${c.name}: ${c.status}`);
        } catch {
          states.push(`${id}: pending`);
        }
      }
      formMsg.textContent = states.join(" · ");
      if (++tries < 60 && states.some((s) => !s.endsWith("acked"))) timer = window.setTimeout(tick, 1000);
    };
    let timer = window.setTimeout(tick, 500);
    d.add(() => window.clearTimeout(timer));
  };

  // The signal list and the reported table come from the server's catalog; the chart starts with the
  // default meanwhile.
  get("/api/v1/catalog", {})
    .then((c) => {
      catalog = c;
      const shown = signalSel.value;
      const names = signalNames(c);
      signalSel.replaceChildren(...names.map((s) => el("option", { value: s }, s)));
      signalSel.value = names.includes(shown) ? shown : names[0];
      if (signalSel.value !== shown) signalSel.onchange?.(new Event("change"));
      if (lastTwin) renderTwin(lastTwin);
    })
    .catch(() => undefined);
  loadTwin()
    .then(() => Promise.all([loadHistory(), loadWindows()]))
    .catch((e: unknown) => head.append(el("div", { class: "error" }, e instanceof Error ? e.message : String(e))));
  d.every(5000, () => void loadHistory().catch(() => undefined));
  // Windows close minutes apart: a slower refresh, from the car's last message (device time).
  const loadWindows = () => windows.load(lastTwin?.connection.last_seen || Date.now());
  d.every(15000, () => void loadWindows().catch(() => undefined));
  let queued = false;
  d.add(
    live.on("twins", (ev) => {
      if (queued || !ev.items.some((t) => t.id === car)) return;
      queued = true;
      setTimeout(() => {
        queued = false;
        loadTwin().catch(() => undefined);
      }, 300);
    }),
  );
  return d;
}
