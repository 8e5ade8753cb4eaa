import WebSocket from 'ws';
import { eventually } from './hub-process.ts';

/** A plain WebSocket client speaking VISS JSON, as a phone or a dashboard would. */
export class VissTestClient {
  readonly messages: Array<Record<string, unknown>> = [];
  /** The close code and reason once the connection has closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private next = 1;
  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => this.messages.push(JSON.parse(data.toString('utf8'))));
    this.closed = new Promise((resolve) =>
      socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString('utf8') })),
    );
  }

  static async open(url: string, options: { protocol?: string; token?: string } = {}): Promise<VissTestClient> {
    const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const socket = new WebSocket(url, options.protocol ? [options.protocol] : [], { headers });
    const client = new VissTestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  /** Sends a request and waits for the answer with its requestId. */
  async ask(body: Record<string, unknown> | string): Promise<Record<string, unknown>> {
    const requestId = `r${this.next++}`;
    this.socket.send(typeof body === 'string' ? body : JSON.stringify({ ...body, requestId }));
    const expectId = typeof body === 'string' ? undefined : requestId;
    return eventually(() => {
      const found = this.messages.find((m) => m.action !== 'subscription' && m.requestId === expectId);
      if (!found) throw new Error(`no answer to ${JSON.stringify(body).slice(0, 200)}`);
      this.messages.splice(this.messages.indexOf(found), 1);
      return found;
    });
  }

  events(subscriptionId: unknown): Array<Record<string, unknown>> {
    return this.messages.filter((m) => m.action === 'subscription' && m.subscriptionId === subscriptionId);
  }

  close(): void {
    this.socket.close();
  }
}
