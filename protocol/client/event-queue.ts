/**
 * The buffer behind `Subscription.events()`: frames pushed while nobody awaits are
 * kept in order (unbounded: a consumer that never reads grows it), and the iterator
 * ends when the subscription ends — cleanly on leave/close, by throwing when it
 * failed.
 */

/** An async iterator fed by push(); ends with end(). */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  readonly #buffer: T[] = [];
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void } | null = null;
  #ended = false;
  #error: unknown = undefined;
  readonly #onReturn: () => void;

  /** `onReturn` runs once when the consumer stops early (break/return). */
  constructor(onReturn: () => void) {
    this.#onReturn = onReturn;
  }

  /** Adds an item; ignored after end(). */
  push(item: T): void {
    if (this.#ended) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      waiter.resolve({ value: item, done: false });
    } else {
      this.#buffer.push(item);
    }
  }

  /** Ends the iteration once the buffer is drained; with an error, next() then rejects with it. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    const waiter = this.#waiter;
    if (!waiter) return;
    this.#waiter = null;
    if (error === undefined) waiter.resolve({ value: undefined, done: true });
    else waiter.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) return Promise.resolve({ value: this.#buffer.shift() as T, done: false });
    if (this.#ended) {
      if (this.#error === undefined) return Promise.resolve({ value: undefined, done: true });
      const error = this.#error;
      this.#error = undefined; // throw once, then report done like any finished iterator
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#ended) this.#onReturn();
    this.#buffer.length = 0;
    this.#error = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
