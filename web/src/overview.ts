// Fleet overview: live tiles (cars, connected, msg/s, processed, DLQ, lag, anomalies), throughput charts
// and the cars with the highest anomaly score.
import uPlot from "uplot";
import { el, fmt, get, live, type Throughput } from "./api";
import { Disposer, type Page } from "./page";
import { fleetWindows } from "./windows";

const WINDOW = 300; // seconds of history in the charts

export function overviewPage(root: HTMLElement): Page {
  const d = new Disposer();
  const tiles: Record<string, HTMLElement> = {};
  const tileRow = el("section", { class: "tiles" });
  for (const [key, label] of [
    ["cars", "cars"],
    ["online", "connected"],
    ["msgs", "msg/s"],
    ["processed", "processed"],
    ["dlq", "DLQ"],
    ["lag", "consumer lag"],
    ["anomalies", "anomalies"],
  ]) {
    const value = el("div", { class: "value", "data-tile": key }, "–");
    tiles[key] = value;
    tileRow.append(el("div", { class: "tile" }, value, el("div", { class: "label" }, label)));
  }
  const charts = el("section", { class: "charts" });
  const rateBox = el("div", { class: "chart" });
  const lagBox = el("div", { class: "chart" });
  charts.append(rateBox, lagBox);
  const top = el("tbody");
  const windows = fleetWindows();
  d.add(() => windows.destroy());
  // An edge site's replication to central (`up --uplink`): hidden elsewhere.
  const uplink = el("p", { id: "uplink", hidden: "" });
  root.append(
    el("h1", {}, "Fleet overview"),
    uplink,
    tileRow,
    charts,
    el("h2", {}, "Windows"),
    windows.section,
    el("h2", {}, "Highest anomaly scores"),
    el(
      "table",
      { class: "list", id: "top-cars" },
      el(
        "thead",
        {},
        el("tr", {}, el("th", {}, "car"), el("th", {}, "status"), el("th", {}, "score"), el("th", {}, "threshold")),
      ),
      top,
    ),
  );

  const ts: number[] = [];
  const rate: number[] = [];
  const online: number[] = [];
  const lag: number[] = [];
  const dlq: number[] = [];
  const width = () => Math.max(320, Math.floor((charts.clientWidth - 24) / 2));
  // Two series per chart: the main one on the left axis, the second on its own right axis.
  const chart = (title: string, box: HTMLElement, data: number[][], a: [string, string], b: [string, string, string]) =>
    new uPlot(
      {
        title,
        width: width(),
        height: 220,
        series: [{}, { label: a[0], stroke: a[1], width: 2 }, { label: b[0], stroke: b[1], scale: b[2] }],
        axes: [{}, {}, { side: 1, scale: b[2], grid: { show: false } }],
      },
      data as uPlot.AlignedData,
      box,
    );
  const rateChart = chart(
    "messages per second / cars connected",
    rateBox,
    [ts, rate, online],
    ["msg/s", "#4c8dff"],
    ["connected", "#2fb344", "cars"],
  );
  const lagChart = chart("consumer lag / DLQ", lagBox, [ts, lag, dlq], ["lag", "#f2a93b"], ["DLQ", "#e5484d", "dlq"]);
  d.add(() => {
    rateChart.destroy();
    lagChart.destroy();
  });
  const onResize = () => {
    rateChart.setSize({ width: width(), height: 220 });
    lagChart.setSize({ width: width(), height: 220 });
  };
  window.addEventListener("resize", onResize);
  d.add(() => window.removeEventListener("resize", onResize));

  const push = (s: Throughput) => {
    if (ts.length && s.ts / 1000 <= ts[ts.length - 1]) return;
    ts.push(s.ts / 1000);
    rate.push(s.msgs_per_s);
    online.push(s.online);
    lag.push(s.lag);
    dlq.push(s.dlq);
    while (ts.length > WINDOW) [ts, rate, online, lag, dlq].forEach((a) => a.shift());
    tiles.msgs.textContent = fmt(s.msgs_per_s);
    tiles.online.textContent = fmt(s.online);
    tiles.processed.textContent = fmt(s.processed);
    tiles.dlq.textContent = fmt(s.dlq);
    tiles.lag.textContent = fmt(s.lag);
  };
  const redraw = () => {
    rateChart.setData([ts, rate, online]);
    lagChart.setData([ts, lag, dlq]);
  };

  get("/api/v1/fleet/throughput", {}, { seconds: WINDOW })
    .then((r) => {
      for (const s of r.items) push(s);
      redraw();
    })
    .catch(() => undefined);
  d.add(
    live.on("throughput", (s) => {
      push(s);
      redraw();
    }),
  );

  const summary = async () => {
    const s = await get("/api/v1/fleet/summary", {});
    tiles.cars.textContent = fmt(s.cars);
    tiles.anomalies.textContent = fmt(s.by_status.anomaly);
    if (s.uplink) {
      const badge = { live: "ok", spooling: "warning", full: "anomaly" }[s.uplink.state];
      uplink.replaceChildren(
        "uplink to central: ",
        el("span", { class: `badge ${badge}` }, s.uplink.state),
        ` spool ${fmt(s.uplink.spool_bytes / 1e6, 1)} MB`,
      );
      uplink.hidden = false;
    }
    if (!ts.length) {
      tiles.online.textContent = fmt(s.online);
    }
    top.replaceChildren(
      ...s.top.map((c) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: `#/car/${encodeURIComponent(c.car)}`, class: "car-link" }, c.car)),
          el("td", {}, el("span", { class: `badge ${c.status}` }, c.status)),
          el("td", {}, fmt(c.score, 3)),
          el("td", {}, fmt(c.threshold, 3)),
        ),
      ),
    );
  };
  summary().catch(() => undefined);
  d.every(3000, () => void summary().catch(() => undefined));
  windows.load().catch(() => undefined);
  d.every(15000, () => void windows.load().catch(() => undefined));
  return d;
}
