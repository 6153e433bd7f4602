// Models: the anomaly models the score stage uses (active and shadow, from fleet.models) with their
// threshold, calibration and training metrics, from GET /models.
import { el, fmt, get, time, type ModelMeta } from "./api";
import { Disposer, type Page } from "./page";

// Per-input vectors (scaler, weights) are long and mean little on screen.
const HIDDEN = new Set(["center", "scale", "error_scale", "weight"]);

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
  root.append(el("h1", {}, "Models"), box);
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
            el("table", { class: "kv" }, el("tbody", {}, ...rows)),
          );
        }),
      );
    })
    .catch((e: unknown) => box.replaceChildren(String(e)));
  return d;
}
