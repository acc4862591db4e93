/**
 * In-process bus for standalone mode: publish calls the handler synchronously for
 * subscribed sessions. Synchronous delivery keeps the sequencer's "publish in seq
 * order" guarantee trivially.
 */
import type { Bus, BusHandler, BusMessage } from './bus.js';

/** Creates the in-memory bus. */
export function createMemoryBus(): Bus {
  const subscribed = new Set<string>();
  let handler: BusHandler = () => {};
  const bus = {
    async subscribe(session: string) {
      subscribed.add(session);
    },
    async unsubscribe(session: string) {
      subscribed.delete(session);
    },
    publish(msg: BusMessage) {
      if (subscribed.has(msg.session)) handler(msg);
    },
    onMessage(h: BusHandler) {
      handler = h;
    },
    async close() {
      subscribed.clear();
    },
  } satisfies Bus;
  return bus;
}
