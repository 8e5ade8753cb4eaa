import type { HubEvent } from './events.ts';

export type EventHandler = (event: HubEvent) => void;

/**
 * How events travel inside the hub. The in-process bus delivers synchronously (lowest latency);
 * a distributed bus (NATS JetStream) implements the same interface for several hub processes.
 */
export interface Bus {
  publish(event: HubEvent): void;
  /**
   * Returns the function that removes the subscription. An `observer` only watches (it never
   * publishes while handling an event): it hears each event before the subscribers that act on it.
   */
  subscribe(handler: EventHandler, options?: { observer?: boolean }): () => void;
  close(): Promise<void>;
}

export class LocalBus implements Bus {
  private handlers = new Set<EventHandler>();
  /**
   * Delivered to first. Delivery is synchronous, so an event a subscriber publishes while handling
   * another (a rule's run ending on the state change that started it) reaches everyone after that
   * subscriber at once, before the event that caused it: a live stream showed the run before the
   * state change. Watchers that hear every event first see causes before their effects.
   */
  private observers = new Set<EventHandler>();

  constructor(private readonly onHandlerError: (error: unknown, event: HubEvent) => void = () => {}) {}

  publish(event: HubEvent): void {
    if (this.observers.size > 0) this.deliver(this.observers, event);
    this.deliver(this.handlers, event);
  }

  private deliver(handlers: Set<EventHandler>, event: HubEvent): void {
    for (const handler of handlers) {
      try {
        handler(event);
      } catch (error) {
        // One broken subscriber must not keep the event from the others.
        this.onHandlerError(error, event);
      }
    }
  }

  subscribe(handler: EventHandler, options: { observer?: boolean } = {}): () => void {
    const set = options.observer ? this.observers : this.handlers;
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.observers.clear();
  }
}
