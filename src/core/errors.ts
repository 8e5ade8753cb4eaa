/**
 * An error a user caused and can fix. The API turns it into `{"error":{"code","message"}}` with
 * its status; anything else is an internal error whose details stay in the log.
 */
export class HubError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export const notFound = (what: string) => new HubError(404, 'not_found', `${what} not found`);
export const badRequest = (message: string, code = 'bad_request') => new HubError(400, code, message);
export const forbidden = (message: string) => new HubError(403, 'forbidden', message);
export const conflict = (message: string) => new HubError(409, 'conflict', message);

/**
 * What an adapter throws when a command's time ran out before it could be sent (a car out of
 * reach until its expiry): the command ends `expired`, as one no device confirmed in time does,
 * not `failed`, which is for an adapter that could not send it at all.
 */
export class CommandExpired extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandExpired';
  }
}
