/**
 * The bus carries sequenced frames from the instance that sequenced them to every
 * instance whose shards hold subscribers of the session.
 *
 * Contract: a subscriber gets a session's messages in seq order, each at most once.
 * Delivery is at-most-once across reconnects (like Redis Pub/Sub): a gap is healed
 * by clients resuming from history, never by the bus. `subscribe` resolves once
 * messages published after it are guaranteed to arrive, so a history read made
 * after it cannot miss an event.
 */

/** One frame travelling on the bus. */
export interface BusMessage {
  session: string;
  /** Session seq of the frame; 0 for unsequenced frames (presence notices). */
  seq: number;
  /** The encoded server frame, shared untouched by every recipient. */
  frame: Uint8Array;
  /** Only these users receive it. */
  to?: readonly string[];
  /** Snapshot key of a conflatable frame. */
  conflateKey?: string;
}

/** Receives bus messages of the sessions this instance subscribed to. */
export type BusHandler = (msg: BusMessage) => void;

/** Cross-instance fan-out of sequenced frames; see the contract above. */
export interface Bus {
  /** Starts delivering the session's messages to the handler. */
  subscribe(session: string): Promise<void>;
  /** Stops delivering the session's messages. */
  unsubscribe(session: string): Promise<void>;
  /** Publishes a frame to every instance subscribed to its session. */
  publish(msg: BusMessage): void;
  /** Sets the one handler that receives messages. */
  onMessage(handler: BusHandler): void;
  /** Releases connections. */
  close(): Promise<void>;
}
