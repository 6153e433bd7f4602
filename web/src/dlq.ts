// Dead letters: what the stages could not use, counted per stage and reason, and the newest records with
// their original bytes (GET /api/v1/dlq). Refreshed every 5 s: dead letters are rare and need no stream.
import { el, get, time } from "./api";
import { Disposer, type Page } from "./page";

// A record's bytes are shown up to this many characters; the API keeps at most 4096 bytes of each.
const PREVIEW = 160;

export function dlqPage(root: HTMLElement): Page {
  const d = new Disposer();
  const stage = el("select", { id: "dlq-stage" }, el("option", { value: "" }, "every stage"));
  const counts = el("tbody");
  const body = el("tbody");
  const note = el("p", { class: "muted" });
  const head = (cols: string[]) => el("thead", {}, el("tr", {}, ...cols.map((h) => el("th", {}, h))));
  root.append(
    el("h1", {}, "Dead letters"),
    el(
      "p",
      { class: "muted" },
      "Records a stage could not use, sent to the DLQ of the topic it read them from (counted since the API started).",
    ),
    el("table", { class: "list", id: "dlq-counts" }, head(["stage", "reason", "records"]), counts),
    el("div", { class: "filters" }, el("label", {}, "stage ", stage)),
    el(
      "table",
      { class: "list", id: "dlq" },
      head(["time", "stage", "reason", "topic", "car", "detail", "bytes"]),
      body,
    ),
    note,
  );
  const stages = new Set<string>();

  const load = async () => {
    const r = await get("/api/v1/dlq", {}, { limit: 100, ...(stage.value ? { stage: stage.value } : {}) });
    counts.replaceChildren(
      ...r.counts.map((c) =>
        el("tr", {}, el("td", {}, c.stage), el("td", {}, c.reason), el("td", {}, String(c.count))),
      ),
    );
    for (const c of r.counts)
      if (!stages.has(c.stage)) {
        stages.add(c.stage);
        stage.append(el("option", { value: c.stage }, c.stage));
      }
    note.textContent =
      r.source === null ? "This API reads no log: no dead letters to show." : r.items.length ? "" : "No dead letters.";
    body.replaceChildren(
      ...r.items.map((e) => {
        const shown = e.value.length > PREVIEW ? `${e.value.slice(0, PREVIEW)}…` : e.value;
        const bytes = el("code", { title: `${e.size} bytes${e.truncated ? " (first 4096 kept)" : ""}` }, shown);
        return el(
          "tr",
          {},
          el("td", {}, time(e.timestamp)),
          el("td", {}, e.stage),
          el("td", {}, el("span", { class: "badge anomaly" }, e.reason)),
          el("td", {}, `${e.topic} ${e.partition}/${e.offset}`),
          el("td", {}, e.key ? el("a", { href: `#/car/${encodeURIComponent(e.key)}` }, e.key) : ""),
          el("td", {}, e.detail),
          el("td", {}, e.encoding === "base64" ? el("span", { class: "muted" }, "base64 ") : "", bytes),
        );
      }),
    );
  };
  stage.onchange = () => load();
  load().catch((e: unknown) => (note.textContent = String(e)));
  d.every(5000, () => void load().catch(() => undefined));
  return d;
}
