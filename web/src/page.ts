// A page of the dashboard: rendered into the main element, disposed when the route changes.
export interface Page {
  dispose(): void;
}

/// Collects cleanups (timers, stream subscriptions, listeners) so a page can release everything at once.
export class Disposer implements Page {
  private fns: (() => void)[] = [];
  add(fn: () => void): void {
    this.fns.push(fn);
  }
  every(ms: number, fn: () => void): void {
    const id = window.setInterval(fn, ms);
    this.add(() => window.clearInterval(id));
  }
  dispose(): void {
    for (const fn of this.fns.splice(0)) fn();
  }
}
