// The REST API client and the live stream. The token lives in localStorage; every call sends it as a
// Bearer header, the EventSource (which cannot send headers) as ?token=.

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOKEN_KEY = "fleettwin.token";

export function token(): string {
  return localStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(t: string): void {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api(path: string, init: RequestInit = {}): Promise<Json> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token()}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const res = await fetch(`api/v1${path}`, { ...init, headers });
  const text = await res.text();
  let body: Json = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401) window.dispatchEvent(new CustomEvent("fleettwin:unauthorized"));
    throw new ApiError(res.status, body?.error ?? res.statusText);
  }
  return body;
}

type Listener = (data: Json) => void;

/// One EventSource shared by every page; pages subscribe to event names and unsubscribe when they leave.
class LiveStream {
  private source: EventSource | null = null;
  private listeners = new Map<string, Set<Listener>>();

  on(event: string, fn: Listener): () => void {
    if (!this.listeners.has(event)) {
      this.listeners.set(event, new Set());
      this.source?.addEventListener(event, (e) => this.dispatch(event, e as MessageEvent));
    }
    this.listeners.get(event)!.add(fn);
    return () => this.listeners.get(event)?.delete(fn);
  }

  connect(): void {
    this.source?.close();
    const src = new EventSource(`api/v1/stream?token=${encodeURIComponent(token())}`);
    const dot = document.getElementById("live");
    src.onopen = () => dot?.classList.remove("off");
    src.onerror = () => dot?.classList.add("off");
    for (const event of this.listeners.keys())
      src.addEventListener(event, (e) => this.dispatch(event, e as MessageEvent));
    this.source = src;
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }

  private dispatch(event: string, e: MessageEvent): void {
    let data: Json;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    for (const fn of this.listeners.get(event) ?? []) fn(data);
  }
}

export const live = new LiveStream();

export function fmt(n: number | undefined | null, digits = 0): string {
  if (n === undefined || n === null || !isFinite(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

export function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

export const STATUS_COLORS = ["#8a8f98", "#2fb344", "#f2a93b", "#e5484d"]; // unknown, ok, warning, anomaly
export const STATUS_NAMES = ["unknown", "ok", "warning", "anomaly"];
