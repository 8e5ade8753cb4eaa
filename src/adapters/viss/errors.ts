/**
 * VISS errors: the status-code table shared by VISSv2 and VISSv3 transport (number, reason, and a
 * description the server may make more precise). Each version spells it on the wire its own way.
 */
export interface VissError {
  number: number;
  reason: string;
  description: string;
}

const error = (number: number, reason: string, description: string): VissError => ({ number, reason, description });

/** The spec's errors, with the descriptions the transport specs suggest for each case. */
export const vissErrors = {
  malformed: (detail = 'The request is malformed') => error(400, 'bad_request', detail),
  badAction: () => error(400, 'bad_request', 'Missing or invalid action'),
  badPath: (path: string) => error(400, 'bad_request', `Missing or invalid path: ${clip(path)}`),
  badFilter: (detail: string) => error(400, 'bad_request', `Missing or invalid filter: ${detail}`),
  badValue: () => error(400, 'bad_request', 'Missing or invalid value'),
  setOnSensor: (path: string) =>
    error(400, 'invalid_data', `Update of a sensor is not supported: ${clip(path)} is not an actuator`),
  setOnBranch: (path: string) =>
    error(400, 'invalid_data', `Requested action on a branch is not supported: ${clip(path)}`),
  wrongType: (datatype: string) => error(400, 'invalid_data', `Incorrect data type: expected ${datatype}`),
  outsideLimit: (limit: string) => error(400, 'invalid_data', `Data value outside limit: must be ${limit}`),
  missingToken: () => error(401, 'invalid_token', 'Access token is missing'),
  invalidToken: () => error(401, 'invalid_token', 'Access token is invalid'),
  refused: (why: string) => error(403, 'forbidden_request', `The server refuses to carry out the request: ${why}`),
  unknownPath: (path: string) => error(404, 'unavailable_data', `Data is unknown: ${clip(path)}`),
  notAvailable: (path: string) => error(404, 'unavailable_data', `Data temporarily unaccessible: ${clip(path)}`),
  unknownSubscription: () => error(404, 'unavailable_data', 'Unknown subscription Id'),
  tooManySubscriptions: (max: number) =>
    error(
      429,
      'too_many_requests',
      `Rate-limiting due to too many requests: at most ${max} subscriptions per connection`,
    ),
  tooManyUnknownTokens: (retryAfter: number) =>
    error(
      429,
      'too_many_requests',
      `Rate-limiting due to too many requests: too many unknown tokens from this address; try again in ${retryAfter} s`,
    ),
  unavailable: (why: string) =>
    error(503, 'service_unavailable', `The server is temporarily unable to handle the request: ${why}`),
} as const;

export function isVissError(value: unknown): value is VissError {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as VissError).number === 'number' &&
    typeof (value as VissError).reason === 'string'
  );
}

/** Echoed request text is cut short, so an error never carries a hostile payload back in full. */
export function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
