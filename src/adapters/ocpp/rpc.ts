import type { Clock } from '../../core/clock.ts';
import { checkPayload, loadSchemas, type OcppErrorCode, type OcppSchema } from './validator.ts';

/**
 * OCPP-J 1.6 framing (the JSON over WebSocket specification, section 4): a CALL is
 * `[2, id, action, payload]`, a CALLRESULT `[3, id, payload]`, a CALLERROR
 * `[4, id, code, description, details]`. Both ends of a connection are an OcppRpc: the central
 * system in the hub and the simulated charge point. Every payload, in and out, is checked against
 * the official schema of its action; a payload that fails never reaches a handler.
 */

export const OCPP_SUBPROTOCOL = 'ocpp1.6';

const CALL = 2;
const CALLRESULT = 3;
const CALLERROR = 4;

/** What an incoming CALL is answered with when the handler refuses it. */
export class OcppCallError extends Error {
  constructor(
    readonly code: OcppErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'OcppCallError';
  }
}

export type Payload = Record<string, unknown>;

/** Answers one incoming CALL with its response payload; throwing OcppCallError answers a CALLERROR. */
export type CallHandler = (action: string, payload: Payload) => Promise<Payload> | Payload;

export interface OcppRpcOptions {
  clock: Clock;
  /** Puts one text frame on the socket. */
  send(text: string): void;
  handle: CallHandler;
  /** How long the other end has to answer a CALL (OCPP leaves this to the implementation). */
  timeoutMs?: number;
  /** Told about frames that were refused, for the log. */
  onRefused?(reason: string, frame: string): void;
}

interface Pending {
  action: string;
  resolve(payload: Payload): void;
  reject(error: Error): void;
  cancelTimeout(): void;
}

let schemas: Map<string, OcppSchema> | null = null;

/** The schema of a request (`BootNotification`) or a response (`BootNotificationResponse`). */
export function ocppSchema(name: string): OcppSchema | undefined {
  schemas ??= loadSchemas();
  return schemas.get(name);
}

export class OcppRpc {
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: OcppRpcOptions) {}

  /** Sends a CALL and resolves with the other end's validated CALLRESULT payload. */
  call(action: string, payload: Payload): Promise<Payload> {
    if (this.closed) return Promise.reject(new Error('the OCPP connection is closed'));
    const schema = ocppSchema(action);
    if (!schema) return Promise.reject(new Error(`${action} is not an OCPP 1.6 message`));
    const violation = checkPayload(schema, payload);
    if (violation) return Promise.reject(new Error(`${action} would be invalid: ${violation.message}`));
    // Ids only need to be unique per connection; a prefix keeps them apart from the other end's.
    const id = `t${this.nextId++}`;
    return new Promise<Payload>((resolve, reject) => {
      const cancelTimeout = this.options.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${action} in time`));
      }, this.options.timeoutMs ?? 30_000);
      this.pending.set(id, { action, resolve, reject, cancelTimeout });
      this.options.send(JSON.stringify([CALL, id, action, payload]));
    });
  }

  /** Takes one text frame from the socket. */
  receive(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.refuse('-1', 'FormationViolation', 'the frame is not JSON', text);
      return;
    }
    // OCPP-J has no id to answer when the frame has none; "-1" is what OCPP 2.0.1 later settled on.
    const id = Array.isArray(frame) && typeof frame[1] === 'string' ? frame[1] : '-1';
    if (!Array.isArray(frame) || typeof frame[1] !== 'string' || frame[1].length > 36) {
      this.refuse(id, 'FormationViolation', 'a frame is [messageTypeId, uniqueId (string ≤ 36), …]', text);
      return;
    }
    switch (frame[0]) {
      case CALL:
        void this.answer(frame, text);
        return;
      case CALLRESULT:
        this.settle(frame, text);
        return;
      case CALLERROR:
        this.fail(frame, text);
        return;
      default:
        this.refuse(id, 'FormationViolation', `unknown messageTypeId ${JSON.stringify(frame[0])}`, text);
    }
  }

  /** Fails every CALL still waiting; the socket has gone. */
  close(): void {
    this.closed = true;
    for (const [id, pending] of this.pending) {
      pending.cancelTimeout();
      pending.reject(new Error('the OCPP connection closed'));
      this.pending.delete(id);
    }
  }

  private async answer(frame: unknown[], text: string): Promise<void> {
    const id = frame[1] as string;
    const [, , action, payload] = frame;
    if (frame.length !== 4 || typeof action !== 'string') {
      this.refuse(id, 'FormationViolation', 'a CALL is [2, uniqueId, action, payload]', text);
      return;
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      this.refuse(id, 'FormationViolation', 'the payload of a CALL is a JSON object', text);
      return;
    }
    // A confirmation's schema (`BootNotificationResponse`) is no action: the name is unknown as one.
    const schema = action.endsWith('Response') ? undefined : ocppSchema(action);
    if (!schema) {
      this.refuse(id, 'NotImplemented', `${action} is not an action this end knows`, text);
      return;
    }
    const violation = checkPayload(schema, payload);
    if (violation) {
      this.refuse(id, violation.code, violation.message, text);
      return;
    }
    let result: Payload;
    try {
      result = await this.options.handle(action, payload as Payload);
    } catch (error) {
      if (error instanceof OcppCallError) this.sendError(id, error.code, error.message, error.details);
      else this.sendError(id, 'InternalError', 'the message could not be processed');
      return;
    }
    const answerViolation = checkPayload(ocppSchema(`${action}Response`) ?? {}, result);
    if (answerViolation) {
      // Our own bug: the other end must not receive an invalid confirmation.
      this.options.onRefused?.(`own ${action} response invalid: ${answerViolation.message}`, JSON.stringify(result));
      this.sendError(id, 'InternalError', 'the answer could not be formed');
      return;
    }
    this.send([CALLRESULT, id, result]);
  }

  private settle(frame: unknown[], text: string): void {
    const id = frame[1] as string;
    const pending = this.pending.get(id);
    if (!pending) {
      this.options.onRefused?.('a CALLRESULT for no open CALL', text);
      return;
    }
    const payload = frame[2];
    this.pending.delete(id);
    pending.cancelTimeout();
    const schema = ocppSchema(`${pending.action}Response`) ?? {};
    const violation =
      frame.length !== 3
        ? { message: 'a CALLRESULT is [3, uniqueId, payload]' }
        : checkPayload(schema, payload, `${pending.action}Response`);
    if (violation) {
      this.options.onRefused?.(violation.message, text);
      pending.reject(new Error(`invalid ${pending.action} confirmation: ${violation.message}`));
      return;
    }
    pending.resolve(payload as Payload);
  }

  private fail(frame: unknown[], text: string): void {
    const id = frame[1] as string;
    const pending = this.pending.get(id);
    if (!pending) {
      this.options.onRefused?.('a CALLERROR for no open CALL', text);
      return;
    }
    this.pending.delete(id);
    pending.cancelTimeout();
    const code = typeof frame[2] === 'string' ? frame[2] : 'GenericError';
    const description = typeof frame[3] === 'string' && frame[3] ? `: ${frame[3]}` : '';
    pending.reject(new Error(`${pending.action} refused with ${code}${description}`));
  }

  private refuse(id: string, code: OcppErrorCode, message: string, text: string): void {
    this.options.onRefused?.(`${code}: ${message}`, text.slice(0, 500));
    this.sendError(id, code, message);
  }

  private sendError(id: string, code: OcppErrorCode, message: string, details: Record<string, unknown> = {}): void {
    this.send([CALLERROR, id, code, message.slice(0, 255), details]);
  }

  private send(frame: unknown[]): void {
    if (!this.closed) this.options.send(JSON.stringify(frame));
  }
}
