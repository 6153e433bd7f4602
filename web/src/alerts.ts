// Alerts: newest first, filtered by status and kind, live (refreshed when the stream reports one), with an
// acknowledge button for operators.
import { api, el, time, fmt, live, type Json } from "./api";
import { Disposer, type Page } from "./page";

export function alertsPage(root: HTMLElement, role: string): Page {
  const d = new Disposer();
  const status = el("select", { id: "alert-status" });
  for (const s of ["open", "all", "acknowledged", "cleared"]) status.append(el("option", { value: s }, s));
  const kind = el("select", { id: "alert-kind" }, el("option", { value: "" }, "every kind"));
  const body = el("tbody");
  const note = el("p", { class: "muted" });
  root.append(
    el("h1", {}, "Alerts"),
    el("div", { class: "filters" }, el("label", {}, "status ", status), el("label", {}, "kind ", kind)),
    el("table", { class: "list", id: "alerts" },
      el("thead", {}, el("tr", {}, ...["time", "car", "kind", "score", "signals", "state", ""].map((h) => el("th", {}, h)))),
      body),
    note,
  );
  const kinds = new Set<string>();
  const canAck = role === "operator" || role === "admin";

  const load = async () => {
    const q = new URLSearchParams({ status: status.value, limit: "200" });
    if (kind.value) q.set("kind", kind.value);
    const r = await api(`/alerts?${q}`);
    for (const a of r.items as Json[])
      if (!kinds.has(a.kind)) {
        kinds.add(a.kind);
        kind.append(el("option", { value: a.kind }, a.kind));
      }
    note.textContent = r.items.length ? "" : "No alerts match.";
    body.replaceChildren(
      ...r.items.map((a: Json) => {
        const state = a.acknowledged ? "acknowledged" : a.raised ? "open" : "cleared";
        const action = el("td");
        if (canAck && !a.acknowledged) {
          const b = el("button", { class: "ack", "data-alert": a._id }, "acknowledge");
          b.onclick = async () => {
            b.setAttribute("disabled", "");
            await api(`/alerts/${encodeURIComponent(a._id)}/ack`, { method: "POST" });
            await load();
          };
          action.append(b);
        }
        return el("tr", { "data-alert-row": a._id },
          el("td", {}, time(a.ts)),
          el("td", {}, el("a", { href: `#/car/${encodeURIComponent(a.car)}` }, a.car)),
          el("td", {}, a.kind),
          el("td", {}, `${fmt(a.score, 3)} / ${fmt(a.threshold, 3)}`),
          el("td", {}, (a.signals ?? []).join(", ")),
          el("td", {}, el("span", { class: `badge ${state}` }, state)),
          action);
      }),
    );
  };
  status.onchange = kind.onchange = () => load();
  load().catch((e) => (note.textContent = String(e)));
  let queued = false;
  d.add(live.on("alert", () => {
    if (queued) return;
    queued = true;
    setTimeout(() => { queued = false; load().catch(() => undefined); }, 500);
  }));
  return d;
}
