// The fleet map: every car as a dot on a canvas, coloured by health, no tile server. Positions come as
// columns from /fleet/positions (refreshed every 5 s) and status changes from the live stream. Dots are
// drawn as pixels into one ImageData, so 100,000 cars redraw within a frame; pan by dragging, zoom with
// the wheel, click a dot to open its car.
import { el, fmt, get, live, STATUS_COLORS, STATUS_NAMES } from "./api";
import { Disposer, type Page } from "./page";

interface Cars {
  ids: string[];
  lat: Float64Array;
  lon: Float64Array;
  status: Uint8Array;
  index: Map<string, number>;
}

export function mapPage(root: HTMLElement): Page {
  const d = new Disposer();
  const canvas = el("canvas", { id: "map", width: "800", height: "600" });
  const info = el("div", { class: "map-info" }, "loading…");
  const legend = el("div", { class: "legend" });
  STATUS_NAMES.forEach((n, i) =>
    legend.append(el("span", {}, el("i", { style: `background:${STATUS_COLORS[i]}` }), n)),
  );
  root.append(el("h1", {}, "Fleet map"), legend, el("div", { class: "map-wrap" }, canvas), info);
  const ctx = canvas.getContext("2d")!;
  let cars: Cars | null = null;
  // View: centre (lon, lat) and scale in pixels per degree.
  let view = { lon: 0, lat: 0, scale: 1 };
  let fitted = false;
  let pending = false;

  const size = () => {
    const w = canvas.parentElement!.clientWidth;
    const h = Math.max(400, window.innerHeight - 220);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.floor(w * dpr);
    canvas.height = Math.floor(h * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    schedule();
  };
  const fit = () => {
    if (!cars || cars.ids.length === 0) return;
    let minLat = 90,
      maxLat = -90,
      minLon = 180,
      maxLon = -180;
    for (let i = 0; i < cars.ids.length; i++) {
      minLat = Math.min(minLat, cars.lat[i]);
      maxLat = Math.max(maxLat, cars.lat[i]);
      minLon = Math.min(minLon, cars.lon[i]);
      maxLon = Math.max(maxLon, cars.lon[i]);
    }
    const w = canvas.clientWidth,
      h = canvas.clientHeight;
    view = {
      lon: (minLon + maxLon) / 2,
      lat: (minLat + maxLat) / 2,
      scale: 0.9 * Math.min(w / Math.max(1e-6, maxLon - minLon), h / Math.max(1e-6, maxLat - minLat)),
    };
    fitted = true;
  };
  const toScreen = (lon: number, lat: number): [number, number] => [
    canvas.clientWidth / 2 + (lon - view.lon) * view.scale,
    canvas.clientHeight / 2 - (lat - view.lat) * view.scale,
  ];
  // Dots are written straight into a pixel buffer and put on the canvas once: a fillRect per car costs
  // ~3 us in a software-rendered canvas, which is 300 ms a frame at 100,000 cars; pixel writes take a few ms.
  const rgba = STATUS_COLORS.map((hex) => {
    const v = parseInt(hex.slice(1), 16);
    return (0xff << 24) | ((v & 0xff) << 16) | (v & 0xff00) | (v >> 16); // little-endian ABGR
  });
  const background = (0xff << 24) | (0x1b << 16) | (0x14 << 8) | 0x10;
  let image: ImageData | null = null;
  const draw = () => {
    pending = false;
    const W = canvas.width,
      H = canvas.height;
    if (!image || image.width !== W || image.height !== H) image = ctx.createImageData(W, H);
    const px = new Uint32Array(image.data.buffer);
    px.fill(background);
    if (!cars) {
      ctx.putImageData(image, 0, 0);
      return;
    }
    const dpr = window.devicePixelRatio || 1;
    const cx = W / 2,
      cy = H / 2,
      k = view.scale * dpr;
    const counts = [0, 0, 0, 0];
    // Healthy first, warnings and anomalies last and larger, so problems are drawn on top.
    for (const [lo, hi, r] of [
      [0, 1, 2],
      [2, 3, 3],
    ]) {
      const size = Math.round(r * dpr);
      for (let i = 0; i < cars.ids.length; i++) {
        const st = cars.status[i];
        if (st < lo || st > hi) continue;
        counts[st]++;
        const x = Math.round(cx + (cars.lon[i] - view.lon) * k) - (size >> 1);
        const y = Math.round(cy - (cars.lat[i] - view.lat) * k) - (size >> 1);
        if (x < 0 || y < 0 || x + size > W || y + size > H) continue;
        const color = rgba[st];
        for (let dy = 0; dy < size; dy++) px.fill(color, (y + dy) * W + x, (y + dy) * W + x + size);
      }
    }
    ctx.putImageData(image, 0, 0);
    info.textContent = `${fmt(cars.ids.length)} cars: ${STATUS_NAMES.map((n, i) => `${fmt(counts[i])} ${n}`).join(", ")}`;
  };
  const schedule = () => {
    if (!pending) {
      pending = true;
      requestAnimationFrame(draw);
    }
  };

  const load = async () => {
    const p = await get("/api/v1/fleet/positions", {});
    const n = p.ids.length;
    const next: Cars = {
      ids: p.ids,
      lat: Float64Array.from(p.lat),
      lon: Float64Array.from(p.lon),
      status: Uint8Array.from(p.status),
      index: new Map(),
    };
    for (let i = 0; i < n; i++) next.index.set(next.ids[i], i);
    cars = next;
    if (!fitted) fit();
    schedule();
  };
  load().catch((e) => (info.textContent = String(e)));
  d.every(5000, () => void load().catch(() => undefined));
  d.add(
    live.on("twins", (ev) => {
      if (!cars) return;
      for (const t of ev.items) {
        const i = cars.index.get(t.id);
        if (i === undefined) continue;
        cars.lat[i] = t.lat;
        cars.lon[i] = t.lon;
        cars.status[i] = Math.max(0, STATUS_NAMES.indexOf(t.status));
      }
      schedule();
    }),
  );

  // Pan, zoom, click-through.
  let drag: { x: number; y: number; moved: boolean } | null = null;
  canvas.addEventListener("mousedown", (e) => (drag = { x: e.offsetX, y: e.offsetY, moved: false }));
  canvas.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const dx = e.offsetX - drag.x,
      dy = e.offsetY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
    view.lon -= dx / view.scale;
    view.lat += dy / view.scale;
    drag.x = e.offsetX;
    drag.y = e.offsetY;
    schedule();
  });
  canvas.addEventListener("mouseup", (e) => {
    const click = drag && !drag.moved;
    drag = null;
    if (!click || !cars) return;
    let best = -1,
      bestDist = 64; // within 8 px
    for (let i = 0; i < cars.ids.length; i++) {
      const [x, y] = toScreen(cars.lon[i], cars.lat[i]);
      const dist = (x - e.offsetX) ** 2 + (y - e.offsetY) ** 2;
      if (dist < bestDist) {
        bestDist = dist;
        best = i;
      }
    }
    if (best >= 0) location.hash = `#/car/${encodeURIComponent(cars.ids[best])}`;
  });
  canvas.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const f = e.deltaY < 0 ? 1.25 : 0.8;
      // Keep the point under the cursor in place.
      const lon = view.lon + (e.offsetX - canvas.clientWidth / 2) / view.scale;
      const lat = view.lat - (e.offsetY - canvas.clientHeight / 2) / view.scale;
      view.scale *= f;
      view.lon = lon - (e.offsetX - canvas.clientWidth / 2) / view.scale;
      view.lat = lat + (e.offsetY - canvas.clientHeight / 2) / view.scale;
      schedule();
    },
    { passive: false },
  );
  window.addEventListener("resize", size);
  d.add(() => window.removeEventListener("resize", size));
  size();
  return d;
}
