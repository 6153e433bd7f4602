// Window aggregate charts (GET /api/v1/aggregates/{name}): per car on the car page (the hourly summary's
// speed mean and coolant max, and the events per 5 minutes), fleet-wide on the overview (events per 5 minutes
// summed over every car's windows by the server, since the shipped definitions have no per-fleet aggregate). Each chart's
// box says how many windows it draws in data-windows, which the browser test reads.
import uPlot from "uplot";
import { el, get, type Schemas } from "./api";

type Window = Schemas["Aggregates"]["windows"][number];

// The shipped aggregates (aggregate.definitions' defaults).
const HOURLY = "summary_1h";
const EVENTS = "events_5m";
const HOUR_MS = 3_600_000;

/** A chart of windows in `box`, replaced on each call: x the window start, one series per column. */
class WindowChart {
  private chart: uPlot | null = null;
  constructor(
    private readonly box: HTMLElement,
    private readonly title: string,
    private readonly series: { label: string; stroke: string }[],
  ) {}

  draw(starts: number[], columns: (number | null)[][]): void {
    this.box.dataset.windows = String(starts.length);
    const data = [starts.map((s) => s / 1000), ...columns] as uPlot.AlignedData;
    if (this.chart) {
      this.chart.setData(data);
      return;
    }
    this.chart = new uPlot(
      {
        title: this.title,
        width: Math.max(320, this.box.clientWidth || 800),
        height: 220,
        series: [{}, ...this.series.map((s) => ({ ...s, width: 2 }))],
      },
      data,
      this.box,
    );
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = null;
  }
}

const column = (ws: Window[], name: string) => ws.map((w) => w.values[name] ?? null);

/** The car page's window charts; `load(lastSeen)` fetches the windows before the car's last message. */
export function carWindows(car: string) {
  const hourlyBox = el("div", { class: "chart", id: "car-windows-hourly" });
  const eventsBox = el("div", { class: "chart", id: "car-windows-events" });
  const hourly = new WindowChart(hourlyBox, "hourly summary: speed mean / coolant max", [
    { label: "speed mean", stroke: "#4c8dff" },
    { label: "coolant max", stroke: "#e5484d" },
  ]);
  const events = new WindowChart(eventsBox, "events per 5 minutes", [{ label: "events", stroke: "#2fb344" }]);
  const section = el("section", { class: "charts" }, hourlyBox, eventsBox);
  const load = async (lastSeen: number) => {
    const [h, e] = await Promise.all([
      get("/api/v1/aggregates/{name}", { name: HOURLY }, { car, from: Math.max(0, lastSeen - 48 * HOUR_MS) }),
      get("/api/v1/aggregates/{name}", { name: EVENTS }, { car, from: Math.max(0, lastSeen - 6 * HOUR_MS) }),
    ]);
    hourly.draw(
      h.windows.map((w) => w.start),
      [column(h.windows, "speed_mean"), column(h.windows, "coolant_temp_max")],
    );
    events.draw(
      e.windows.map((w) => w.start),
      [e.windows.map((w) => w.count)],
    );
  };
  const destroy = () => {
    hourly.destroy();
    events.destroy();
  };
  return { section, load, destroy };
}

/**
 * The overview's fleet-wide chart: every car's events per 5 minutes, summed per window by the server
 * (GET .../total: one point per window whatever the fleet's size; a range longer than `points` windows comes
 * back downsampled rather than cut off).
 */
export function fleetWindows(hours = 3) {
  const box = el("div", { class: "chart", id: "fleet-windows" });
  const note = el("p", { class: "muted", id: "fleet-windows-note" });
  const chart = new WindowChart(box, "events per 5 minutes, whole fleet", [{ label: "events", stroke: "#2fb344" }]);
  const load = async () => {
    // The range ends at the fleet's newest event time, not the browser's clock: `up --fast` runs event time
    // ahead of the wall clock, and a car's clock may be off.
    const newest = await get("/api/v1/twins", {}, { sort: "-connection.last_seen", limit: 1 });
    const end = Math.max(Date.now(), newest.items[0]?.connection.last_seen ?? 0) + 1;
    const r = await get(
      "/api/v1/aggregates/{name}/total",
      { name: EVENTS },
      { from: Math.max(0, end - hours * HOUR_MS), to: end, points: 300 },
    );
    chart.draw(
      r.windows.map((w) => w.start),
      [r.windows.map((w) => w.count)],
    );
    const notes = [];
    if (r.sampled) notes.push(`One window in ${r.stride} shown (downsampled).`);
    if (r.truncated) notes.push("Partial sums: the answer reached its bound on windows read.");
    note.textContent = notes.join(" ");
  };
  return { section: el("section", {}, box, note), load, destroy: () => chart.destroy() };
}
