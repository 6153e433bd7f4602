// Models: a card for every model on fleet.models (training window and counts, features, threshold and how it
// was set, lineage, the promotion gate's results over its shadow trial, live alerts) and the lineage of
// models, from GET /models; admins can ask for a candidate now or roll back to an earlier model. Each card
// shows the live precision of its model from operators' labels (GET /models/{version}/feedback), and the page
// the drift of live traffic per signal (GET /drift).
import { el, fmt, get, send, time, type ModelMeta, type Schemas } from "./api";
import { Disposer, type Page } from "./page";

type Card = Schemas["ModelCard"];

/** PSI above which the score stage asks for a retraining by default (ml.drift_threshold). */
const DRIFT_SHIFT = 0.25;

/** The drift watch's PSI per signal, largest first, refreshed every 10 s. */
function driftSection(d: Disposer): HTMLElement {
  const body = el("tbody");
  const note = el("p", { class: "muted" }, "loading…");
  const box = el(
    "section",
    { class: "model", id: "drift" },
    el("h2", {}, "Drift of live traffic against the training data"),
    note,
    el("table", { class: "kv" }, body),
  );
  const load = async () => {
    const r = await get("/api/v1/drift", {});
    box.dataset.measured = String(r.measured);
    note.textContent = r.measured
      ? `Population stability index per signal over the score stage's sliding window; largest ${fmt(r.max, 3)} ` +
        `(above ${DRIFT_SHIFT}: shifted), retrain requests ${r.retrain_requests}.`
      : "Not measured here: the score stage runs in another process (see fleettwin_drift_psi in Prometheus), or the model predates drift references.";
    body.replaceChildren(
      ...r.signals.map((s) =>
        el(
          "tr",
          { "data-signal": s.signal },
          el("th", {}, s.signal),
          el("td", {}, el("span", { class: `badge ${s.psi > DRIFT_SHIFT ? "open" : "ok"}` }, fmt(s.psi, 3))),
        ),
      ),
    );
  };
  load().catch((e: unknown) => (note.textContent = String(e)));
  d.every(10000, () => void load().catch(() => undefined));
  return box;
}

/** "precision 0.83 (5 confirmed, 1 false)" from operators' labels of this version's alerts. */
function precisionLine(version: string): HTMLElement {
  const line = el("p", { class: "precision", "data-version": version }, "");
  get("/api/v1/models/{version}/feedback", { version })
    .then((f) => {
      line.textContent =
        f.precision === null || f.precision === undefined
          ? "live precision: no operator labels yet"
          : `live precision ${fmt(f.precision, 2)} (${f.confirmed} confirmed, ${f.false} false)`;
    })
    .catch(() => undefined);
  return line;
}

/** A member of a JSON object, or undefined (metadata members vary with the model kind). */
function at(v: unknown, ...path: string[]): unknown {
  let cur: unknown = v;
  for (const k of path) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : undefined;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v);
}

function row(name: string, ...value: (string | Node)[]): HTMLTableRowElement {
  return el("tr", {}, el("th", {}, name), el("td", {}, ...value));
}

/** The gate's verdict and reasons, and the trial's figures side by side. */
function gateRows(gate: unknown, role: string): HTMLTableRowElement[] {
  if ((gate === null || gate === undefined) && role === "shadow") return [row("Gate", "shadow trial under way")];
  if (gate === null || gate === undefined) return [row("Gate", "no shadow trial (first model, or published by hand)")];
  const verdict = at(gate, "passed") === true ? "passed" : "refused";
  const promoted = at(gate, "promoted") === true ? ", promoted" : at(gate, "mode") === "manual" ? ", manual mode" : "";
  const reasons = at(gate, "reasons");
  const rows = [
    row(
      "Gate",
      el("span", { class: `badge ${verdict}` }, verdict + promoted),
      el("ul", { class: "reasons" }, ...(Array.isArray(reasons) ? reasons : []).map((r) => el("li", {}, str(r)))),
    ),
  ];
  const trial = at(gate, "trial");
  if (trial) {
    const side = (k: string) =>
      `${fmt(num(at(trial, k, "alerts")))} alerts, ${fmt(num(at(trial, k, "estimated_false_per_1000_car_hours")), 2)} est. false / 1,000 car-h, ` +
      `${fmt(100 * (num(at(trial, k, "unfamiliar_share")) ?? 0), 2)}% unfamiliar`;
    rows.push(
      row(
        "Shadow trial",
        `${time(num(at(trial, "from_ts")) ?? 0)} – ${time(num(at(trial, "to_ts")) ?? 0)}, ${fmt(num(at(trial, "cars")))} cars, ` +
          `agreement ${fmt(100 * (num(at(trial, "agreement")) ?? 0), 2)}%`,
      ),
      row("  active", `${str(at(trial, "active", "version"))}: ${side("active")}`),
      row("  candidate", side("candidate")),
    );
  }
  return rows;
}

function cardView(c: Card, admin: boolean, status: HTMLElement): HTMLElement {
  const m = c.meta as Record<string, unknown>;
  const features = at(m, "features");
  const parent = str(at(m, "lineage", "parent"));
  const trigger = str(at(m, "lineage", "trigger"));
  const rollback = el("button", { class: "rollback", "data-version": c.version }, "Make active");
  rollback.addEventListener("click", () => {
    send("post", "/api/v1/models/rollback", {}, { version: c.version })
      .then(() => (status.textContent = `${c.version} published as the active model`))
      .catch((e: unknown) => (status.textContent = String(e)));
  });
  return el(
    "section",
    { class: "model-card", "data-version": c.version, "data-role": c.role },
    el("h2", {}, `${c.version} `, el("span", { class: `badge ${c.role}` }, c.role)),
    el(
      "table",
      { class: "kv" },
      el(
        "tbody",
        {},
        row(
          "Trained on",
          `${time(num(at(m, "training", "from_ts")) ?? 0)} – ${time(num(at(m, "training", "to_ts")) ?? 0)}: ` +
            `${fmt(num(at(m, "training", "events")))} events of ${fmt(num(at(m, "training", "cars")))} cars`,
        ),
        row(
          "Features",
          `${Array.isArray(features) ? features.length : 0}: ${Array.isArray(features) ? features.join(", ") : ""}`,
        ),
        row("Threshold", `${fmt(num(at(m, "threshold", "value")), 4)} (${str(at(m, "threshold", "method"))})`),
        row("Lineage", parent ? `from ${parent}` : "first of its line", trigger ? ` — trigger: ${trigger}` : ""),
        ...gateRows(c.gate, c.role),
        row("Live alerts", fmt(c.live_alerts)),
      ),
    ),
    precisionLine(c.version),
    admin && c.role !== "active" ? rollback : "",
  );
}

/** Each line of models: the newest first, back through its parents. */
function lineage(cards: Card[]): HTMLElement {
  const parentOf = new Map(cards.map((c) => [c.version, str(at(c.meta, "lineage", "parent"))]));
  const isParent = new Set(parentOf.values());
  const lines = cards
    .filter((c) => !isParent.has(c.version))
    .map((c) => {
      const chain = [c.version];
      for (let p = parentOf.get(c.version); p && chain.length < 50; p = parentOf.get(p)) chain.push(p);
      return el("li", { class: "lineage-line" }, chain.reverse().join(" → "));
    });
  return el("section", { class: "lineage" }, el("h2", {}, "Lineage"), el("ul", {}, ...lines));
}

/** The models directory's documents and what the API lists without cards (older servers). */
function itemView(item: Schemas["ModelItem"]): HTMLElement {
  const meta: ModelMeta = item.meta ?? item;
  const rows = Object.entries(meta)
    .filter(([k]) => !["center", "scale", "error_scale", "weight", "drift"].includes(k))
    .map(([k, v]) => row(k, str(v)));
  return el(
    "section",
    { class: "model" },
    el("h2", {}, str(at(meta, "version") ?? "model")),
    el("table", { class: "kv" }, el("tbody", {}, ...rows)),
  );
}

export function modelsPage(root: HTMLElement): Page {
  const d = new Disposer();
  const box = el("div", {}, "loading…");
  const status = el("p", { id: "models-status" });
  const retrain = el("button", { id: "retrain" }, "Train a candidate now");
  retrain.addEventListener("click", () => {
    send("post", "/api/v1/models/train", {}, { detail: "dashboard" })
      .then(() => (status.textContent = "retrain requested: the candidate runs in shadow, then the gate decides"))
      .catch((e: unknown) => (status.textContent = String(e)));
  });
  root.append(el("h1", {}, "Models"), status, driftSection(d), box);
  Promise.all([get("/api/v1/models", {}), get("/api/v1/whoami", {})])
    .then(([r, me]) => {
      const admin = str(at(me, "role")) === "admin";
      if (admin) root.insertBefore(retrain, status);
      if (!r.cards.length && !r.items.length) {
        box.replaceChildren(
          el(
            "p",
            { class: "empty" },
            "No model yet. Train one (fleettwin train) or let the trainer publish one to fleet.models; until then cars are not scored.",
          ),
        );
        return;
      }
      box.replaceChildren(
        ...(r.cards.length
          ? [lineage(r.cards), ...r.cards.map((c) => cardView(c, admin, status))]
          : r.items.map(itemView)),
      );
    })
    .catch((e: unknown) => box.replaceChildren(String(e)));
  return d;
}
