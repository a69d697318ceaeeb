import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Simulated time and cancellation scopes for dry runs (api/authoring/dry-run.ts): the
 * environment the pure interpreter runs in when nothing real may happen.
 *
 * - Timers never wait in real time: once every microtask has run (nothing else can happen), the
 *   clock jumps to the earliest timer, as Temporal's time-skipping test server does.
 * - When no timer is left and the run has not ended, the run is stalled (an approval nobody
 *   decides, an event that never comes): `onStall` is called once.
 * - Cancellation scopes nest like Temporal's: cancelling a scope rejects what was started inside it
 *   (and in cancellable scopes nested in it) with `SimulatedCancellation`; a non-cancellable scope
 *   shields what runs inside it.
 */

/** The simulation's cancellation error, standing in for Temporal's CancelledFailure. */
export class SimulatedCancellation extends Error {
  override name = 'SimulatedCancellation';
}

export class Scope {
  cancelled = false;
  private readonly listeners = new Set<() => void>();
  private readonly children = new Set<Scope>();

  constructor(
    readonly cancellable: boolean,
    readonly parent?: Scope,
  ) {
    if (parent && parent.cancellable && cancellable) {
      parent.children.add(this);
      if (parent.cancelled) this.cancelled = true;
    }
  }

  cancel(): void {
    if (!this.cancellable || this.cancelled) return;
    this.cancelled = true;
    for (const listener of [...this.listeners]) listener();
    for (const child of this.children) child.cancel();
  }

  /** Calls `onCancel` when this scope is cancelled; returns the unsubscribe function. */
  watch(onCancel: () => void): () => void {
    if (!this.cancellable) return () => undefined;
    this.listeners.add(onCancel);
    return () => this.listeners.delete(onCancel);
  }

  get consideredCancelled(): boolean {
    return this.cancellable && this.cancelled;
  }

  /** Inside a non-cancellable scope, at any depth. */
  get shielded(): boolean {
    return !this.cancellable || (this.parent?.shielded ?? false);
  }
}

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
}

export class SimulatedTime {
  private readonly storage = new AsyncLocalStorage<Scope>();
  readonly root = new Scope(true);
  private clock: number;
  private timers: Timer[] = [];
  private seq = 0;
  private advancing = false;
  private stopped = false;
  private checks: Array<() => void> = [];

  constructor(
    readonly startMs: number,
    /** Called when nothing is scheduled any more (the caller decides whether the run is stuck). */
    private readonly onIdle: () => void,
  ) {
    this.clock = startMs;
  }

  now(): number {
    return this.clock;
  }

  /** Simulated milliseconds since the start. */
  get elapsed(): number {
    return this.clock - this.startMs;
  }

  /** No timer fires any more (the dry run is over or abandoned). */
  stop(): void {
    this.stopped = true;
    this.timers = [];
  }

  scope(): Scope {
    return this.storage.getStore() ?? this.root;
  }

  runIn<T>(scope: Scope, fn: () => Promise<T>): Promise<T> {
    return this.storage.run(scope, fn);
  }

  /** Registers a check run after every timer (conditions re-evaluated, as Temporal does after each wake-up). */
  onWake(check: () => void): void {
    this.checks.push(check);
  }

  /** Resolves after `ms` of simulated time; rejects when the current scope is cancelled. */
  delay(ms: number): Promise<void> {
    const scope = this.scope();
    if (scope.consideredCancelled) return Promise.reject(new SimulatedCancellation('cancelled before the timer started'));
    return new Promise<void>((resolve, reject) => {
      const timer = this.addTimer(ms, () => {
        unwatch();
        resolve();
      });
      const unwatch = scope.watch(() => {
        this.removeTimer(timer);
        reject(new SimulatedCancellation('timer cancelled'));
      });
    });
  }

  /** Runs `fn` at simulated `ms` from now; returns a function that removes it. */
  at(ms: number, fn: () => void): () => void {
    const timer = this.addTimer(ms, fn);
    return () => this.removeTimer(timer);
  }

  /** Makes sure the clock looks for due timers (or idleness) once the microtasks are done. */
  poke(): void {
    this.scheduleAdvance();
  }

  private addTimer(ms: number, fire: () => void): Timer {
    const timer: Timer = { at: this.clock + Math.max(0, ms), seq: this.seq++, fire };
    this.timers.push(timer);
    this.scheduleAdvance();
    return timer;
  }

  private removeTimer(timer: Timer): void {
    this.timers = this.timers.filter((t) => t !== timer);
  }

  private scheduleAdvance(): void {
    if (this.advancing || this.stopped) return;
    this.advancing = true;
    setImmediate(() => {
      this.advancing = false;
      if (this.stopped) return;
      if (this.timers.length === 0) {
        this.onIdle();
        return;
      }
      const at = Math.min(...this.timers.map((t) => t.at));
      const due = this.timers.filter((t) => t.at === at).sort((a, b) => a.seq - b.seq);
      this.timers = this.timers.filter((t) => t.at !== at);
      this.clock = Math.max(this.clock, at);
      for (const t of due) t.fire();
      for (const check of this.checks) check();
      this.scheduleAdvance();
    });
  }
}
