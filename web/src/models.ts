// Models: the anomaly models the score stage uses (active and shadow, from fleet.models) with their
// threshold, calibration and training metrics, from GET /models, the live precision of each from operators'
// labels (GET /models/{version}/feedback), and the drift of live traffic per signal (GET /drift).
import { el, fmt, get, time, type ModelMeta } from "./api";
import { Disposer, type Page } from "./page";

// Per-input vectors (scaler, weights, drift deciles) are long and mean little on screen.
const HIDDEN = new Set(["center", "scale", "error_scale", "weight", "drift"]);

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

function value(k: string, v: unknown): string {
  if (typeof v === "number")
    return k.endsWith("_ms") || k.endsWith("_ts") || k === "created" ? time(v) : fmt(v, Number.isInteger(v) ? 0 : 4);
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** A metadata member as text ("" when absent). */
function text(v: unknown): string {
  if (v === undefined || v === null) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function modelsPage(root: HTMLElement): Page {
  const d = new Disposer();
  const box = el("div", {}, "loading…");
  root.append(el("h1", {}, "Models"), driftSection(d), box);
  get("/api/v1/models", {})
    .then((r) => {
      if (!r.items.length) {
        box.replaceChildren(
          el(
            "p",
            { class: "empty" },
            "No model yet. Train one (fleettwin train) or let the train stage publish one to fleet.models; until then cars are not scored.",
          ),
        );
        return;
      }
      box.replaceChildren(
        ...r.items.map((item) => {
          const meta: ModelMeta = item.meta ?? item;
          const role = text(item.role ?? meta.role);
          const rows = Object.entries(meta)
            .filter(([k]) => !HIDDEN.has(k))
            .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, value(k, v))));
          return el(
            "section",
            { class: "model" },
            el(
              "h2",
              {},
              `${text(meta.version ?? meta.name ?? "model")} `,
              role ? el("span", { class: `badge ${role}` }, role) : "",
            ),
            meta.version ? precisionLine(text(meta.version)) : "",
            el("table", { class: "kv" }, el("tbody", {}, ...rows)),
          );
        }),
      );
    })
    .catch((e: unknown) => box.replaceChildren(String(e)));
  return d;
}
