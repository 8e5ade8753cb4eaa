import type { HubEvent } from './events.ts';

export type EventHandler = (event: HubEvent) => void;

/**
 * How events travel inside the hub. The in-process bus delivers synchronously (lowest latency);
 * a distributed bus (NATS JetStream) implements the same interface for several hub processes.
 */
export interface Bus {
  publish(event: HubEvent): void;
  /** Returns the function that removes the subscription. */
  subscribe(handler: EventHandler): () => void;
  close(): Promise<void>;
}

export class LocalBus implements Bus {
  private handlers = new Set<EventHandler>();

  constructor(private readonly onHandlerError: (error: unknown, event: HubEvent) => void = () => {}) {}

  publish(event: HubEvent): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (error) {
        // One broken subscriber must not keep the event from the others.
        this.onHandlerError(error, event);
      }
    }
  }

  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
