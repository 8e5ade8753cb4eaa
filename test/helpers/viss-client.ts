import WebSocket from 'ws';

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

  /**
   * Sends a request and resolves with the answer with its requestId as soon as it arrives (a text
   * body: the first answer without one); rejects after 5 s without it.
   */
  ask(body: Record<string, unknown> | string): Promise<Record<string, unknown>> {
    const requestId = `r${this.next++}`;
    const expectId = typeof body === 'string' ? undefined : requestId;
    const take = () => {
      const found = this.messages.find((m) => m.action !== 'subscription' && m.requestId === expectId);
      if (found) this.messages.splice(this.messages.indexOf(found), 1);
      return found;
    };
    return new Promise((resolve, reject) => {
      // Registered after the constructor's listener, so the message is in `messages` by then.
      const onMessage = () => {
        const found = take();
        if (!found) return;
        clearTimeout(timer);
        this.socket.off('message', onMessage);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.socket.off('message', onMessage);
        reject(new Error(`no answer to ${JSON.stringify(body).slice(0, 200)}`));
      }, 5_000);
      this.socket.on('message', onMessage);
      this.socket.send(typeof body === 'string' ? body : JSON.stringify({ ...body, requestId }));
    });
  }

  events(subscriptionId: unknown): Array<Record<string, unknown>> {
    return this.messages.filter((m) => m.action === 'subscription' && m.subscriptionId === subscriptionId);
  }

  close(): void {
    this.socket.close();
  }
}
