/**
 * A minimal typed event emitter: the SDK runs in browsers too, so it cannot use
 * node:events. A listener that throws does not stop the others; the error is
 * handed to `onListenerError` (the client logs it).
 */

/** Typed `on`/`off`/`once` over an event map (event name → the one argument its listeners get). */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(arg: never) => void>>();
  /** Called when a listener throws (defaults to rethrowing asynchronously). */
  protected onListenerError: (err: unknown) => void = (err) => {
    queueMicrotask(() => {
      throw err;
    });
  };

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: (arg: Events[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof Events>(event: K, listener: (arg: Events[K]) => void): () => void {
    const off = this.on(event, (arg) => {
      off();
      listener(arg);
    });
    return off;
  }

  /** Removes a listener. */
  off<K extends keyof Events>(event: K, listener: (arg: Events[K]) => void): void {
    this.#listeners.get(event)?.delete(listener);
  }

  /** Number of listeners for an event. */
  listenerCount<K extends keyof Events>(event: K): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  protected emit<K extends keyof Events>(event: K, arg: Events[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (arg: Events[K]) => void)(arg);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
