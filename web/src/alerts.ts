// Alerts: newest first, filtered by status and kind, live (refreshed when the stream reports one), with an
// acknowledge button and the confirmed / false labels (operator feedback, kept by the store) for operators.
import { type Alert, el, fmt, get, live, send, time } from "./api";
import { Disposer, type Page } from "./page";

const STATUSES = ["open", "all", "acknowledged", "cleared"] as const;

export function alertsPage(root: HTMLElement, role: string): Page {
  const d = new Disposer();
  const status = el("select", { id: "alert-status" });
  for (const s of STATUSES) status.append(el("option", { value: s }, s));
  const kind = el("select", { id: "alert-kind" }, el("option", { value: "" }, "every kind"));
  const body = el("tbody");
  const note = el("p", { class: "muted" });
  root.append(
    el("h1", {}, "Alerts"),
    el("div", { class: "filters" }, el("label", {}, "status ", status), el("label", {}, "kind ", kind)),
    el(
      "table",
      { class: "list", id: "alerts" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["time", "car", "kind", "score", "signals", "state", "feedback", ""].map((h) => el("th", {}, h)),
        ),
      ),
      body,
    ),
    note,
  );
  const kinds = new Set<string>();
  const canAck = role === "operator" || role === "admin";

  /// The operator's label, and for operators the buttons that set it (a later label replaces it).
  const feedbackCell = (a: Alert): HTMLElement => {
    const cell = el("td", { class: "feedback" });
    if (a.feedback)
      cell.append(
        el(
          "span",
          { class: `badge feedback-${a.feedback}`, title: a.feedback_note },
          a.feedback === "false" ? "false alert" : "confirmed",
        ),
      );
    if (!canAck) return cell;
    for (const label of ["confirmed", "false"] as const) {
      if (a.feedback === label) continue;
      const b = el(
        "button",
        { class: `feedback-${label}`, "data-alert": a._id },
        label === "false" ? "false alert" : "confirm",
      );
      b.onclick = async () => {
        b.setAttribute("disabled", "");
        await send("post", "/api/v1/alerts/{id}/feedback", { id: a._id }, { label });
        await load();
      };
      cell.append(b);
    }
    return cell;
  };

  const load = async () => {
    const r = await get(
      "/api/v1/alerts",
      {},
      {
        status: STATUSES.find((s) => s === status.value) ?? "open",
        limit: 200,
        ...(kind.value ? { kind: kind.value } : {}),
      },
    );
    for (const a of r.items)
      if (!kinds.has(a.kind)) {
        kinds.add(a.kind);
        kind.append(el("option", { value: a.kind }, a.kind));
      }
    note.textContent = r.items.length ? "" : "No alerts match.";
    body.replaceChildren(
      ...r.items.map((a) => {
        const state = a.acknowledged ? "acknowledged" : a.raised ? "open" : "cleared";
        const action = el("td");
        if (canAck && !a.acknowledged) {
          const b = el("button", { class: "ack", "data-alert": a._id }, "acknowledge");
          b.onclick = async () => {
            b.setAttribute("disabled", "");
            await send("post", "/api/v1/alerts/{id}/ack", { id: a._id });
            await load();
          };
          action.append(b);
        }
        return el(
          "tr",
          { "data-alert-row": a._id },
          el("td", {}, time(a.ts)),
          el("td", {}, el("a", { href: `#/car/${encodeURIComponent(a.car)}` }, a.car)),
          el("td", {}, a.kind),
          el("td", {}, `${fmt(a.score, 3)} / ${fmt(a.threshold, 3)}`),
          el("td", {}, a.signals.join(", ")),
          el("td", {}, el("span", { class: `badge ${state}` }, state)),
          feedbackCell(a),
          action,
        );
      }),
    );
  };
  status.onchange = kind.onchange = () => load();
  load().catch((e: unknown) => (note.textContent = String(e)));
  let queued = false;
  d.add(
    live.on("alert", () => {
      if (queued) return;
      queued = true;
      setTimeout(() => {
        queued = false;
        load().catch(() => undefined);
      }, 500);
    }),
  );
  return d;
}
