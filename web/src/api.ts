// The REST API client and the live stream. The token lives in localStorage; every call sends it as a
// Bearer header, the EventSource (which cannot send headers) as ?token=.
//
// Every type of what the server sends comes from docs/openapi.yaml (generated into src/generated/ by
// openapi-typescript when the dashboard is built or checked), so a response shape is written once. A call
// names its documented route ("/api/v1/twins/{car}"); its path and query parameters and its answer are
// typed from that route.
import type { components, paths } from "./generated/openapi";

export type Schemas = components["schemas"];
export type Alert = Schemas["Alert"];
export type Throughput = Schemas["Throughput"];
export type Twin = Schemas["Twin"];
export type Catalog = Schemas["Catalog"];
export type TwinEvents = Schemas["TwinEvents"];
export type ModelMeta = Schemas["ModelMeta"];

type Method = "get" | "post" | "patch";
/** The routes that answer `M`. */
type RouteOf<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never;
}[keyof paths];
type Operation<P extends keyof paths, M extends Method> = paths[P][M];
type JsonOf<R> = R extends { content: { "application/json": infer B } } ? B : never;
/** The JSON body of a successful answer (200, else 202) of `M` on route `P`. */
export type Ok<P extends keyof paths, M extends Method = "get"> =
  Operation<P, M> extends { responses: infer R }
    ? R extends { 200: infer A }
      ? JsonOf<A>
      : R extends { 202: infer A }
        ? JsonOf<A>
        : never
    : never;
type PathParams<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { path: infer X } } ? X : Record<string, never>;
type QueryParams<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? Exclude<Q, undefined> : never;
/** The JSON request body of `M` on route `P`. */
export type Body<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

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

/** The relative URL of `route` with its `{name}` parameters and the query filled in. */
function url(route: string, params: Record<string, string>, query: Record<string, string | number> = {}): string {
  const path = route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) q.set(k, String(v));
  const qs = q.toString();
  // Relative ("api/v1/..."): the dashboard may be served under a prefix.
  return path.slice(1) + (qs ? `?${qs}` : "");
}

function errorMessage(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  return typeof body.error === "string" ? body.error : undefined;
}

async function request<T>(target: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${token()}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const res = await fetch(target, { ...init, headers });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401) window.dispatchEvent(new CustomEvent("fleettwin:unauthorized"));
    throw new ApiError(res.status, errorMessage(body) ?? res.statusText);
  }
  // The one place the server's answer is taken to be what docs/openapi.yaml says it is (the API's unit
  // tests hold the server to that document).
  return body as T;
}

/** GET `route` (a documented path, e.g. "/api/v1/twins/{car}") with its path and query parameters. */
export function get<P extends RouteOf<"get">>(
  route: P,
  params: PathParams<P, "get">,
  query?: QueryParams<P, "get">,
): Promise<Ok<P>> {
  return request<Ok<P>>(url(route, params as Record<string, string>, query as Record<string, string | number>));
}

/** POST or PATCH `route` with a JSON body. */
export function send<M extends "post" | "patch", P extends RouteOf<M>>(
  method: M,
  route: P,
  params: PathParams<P, M>,
  body?: Body<P, M>,
): Promise<Ok<P, M>> {
  return request<Ok<P, M>>(url(route, params as Record<string, string>), {
    method: method.toUpperCase(),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The data of each live-stream event (docs/openapi.yaml, /api/v1/stream). */
export interface LiveEvents {
  hello: Throughput;
  throughput: Throughput;
  twins: TwinEvents;
  alert: Alert;
}
type LiveEvent = keyof LiveEvents;
type Listener<E extends LiveEvent> = (data: LiveEvents[E]) => void;

/// One EventSource shared by every page; pages subscribe to event names and unsubscribe when they leave.
class LiveStream {
  private source: EventSource | null = null;
  private listeners = new Map<LiveEvent, Set<(data: unknown) => void>>();

  on<E extends LiveEvent>(event: E, fn: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
      this.source?.addEventListener(event, (e) => this.dispatch(event, e));
    }
    // Safe: dispatch hands `event`'s listeners only that event's data.
    const untyped = fn as (data: unknown) => void;
    set.add(untyped);
    return () => this.listeners.get(event)?.delete(untyped);
  }

  connect(): void {
    this.source?.close();
    const src = new EventSource(`api/v1/stream?token=${encodeURIComponent(token())}`);
    const dot = document.getElementById("live");
    src.onopen = () => dot?.classList.remove("off");
    src.onerror = () => dot?.classList.add("off");
    for (const event of this.listeners.keys()) src.addEventListener(event, (e) => this.dispatch(event, e));
    this.source = src;
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }

  private dispatch(event: LiveEvent, e: MessageEvent<unknown>): void {
    if (typeof e.data !== "string") return;
    let data: unknown;
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
