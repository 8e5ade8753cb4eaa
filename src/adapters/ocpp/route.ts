import type { FastifyInstance } from 'fastify';
import type { ApiContext, RouteModule } from '../../api/server.ts';
import { HubError } from '../../core/errors.ts';
import type { OcppCentralSystem } from './central-system.ts';
import { OCPP_SUBPROTOCOL } from './rpc.ts';

/** OCPP frames are small; 64 KiB is far beyond any legitimate message and bounds a hostile one. */
const MAX_FRAME_BYTES = 64 * 1024;

/**
 * `/ocpp/{chargePointId}`: the WebSocket charge points connect to. Authentication is OCPP's own
 * (Basic auth with the charge point id as the user), checked before the upgrade so an unknown or
 * wrong charge point never gets a socket. Password attempts are limited as sign-ins are, by the
 * same limiters: per charge point id and address, and per address whatever the id, since both
 * spend the same scrypt checks.
 */
export function ocppRoute(central: OcppCentralSystem): RouteModule {
  return (app: FastifyInstance, ctx: ApiContext) => {
    app.get(
      '/ocpp/:chargePointId',
      {
        websocket: true,
        // The hub picks ocpp1.6 wherever the charger put it in its offer (see subprotocols).
        config: { public: true, subprotocols: [OCPP_SUBPROTOCOL] },
        schema: {
          params: {
            type: 'object',
            required: ['chargePointId'],
            properties: { chargePointId: { type: 'string', maxLength: 48 } },
          },
        },
        preValidation: async (request, reply) => {
          const offered = String(request.headers['sec-websocket-protocol'] ?? '')
            .split(',')
            .map((p) => p.trim());
          if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
            throw new HubError(426, 'upgrade_required', 'OCPP 1.6J is spoken over a WebSocket');
          }
          // One that offered others was refused already; this is one that offered none.
          if (!offered.includes(OCPP_SUBPROTOCOL)) {
            throw new HubError(400, 'unsupported_subprotocol', `the WebSocket subprotocol must be ${OCPP_SUBPROTOCOL}`);
          }
          const { chargePointId } = request.params as { chargePointId: string };
          // Refused here, before the slow check: a flood of wrong passwords queued scrypt checks
          // that held up other chargers' right ones. Only an attempt with a password counts.
          const security = ctx.security;
          const attempt = `ocpp\u0000${chargePointId}\u0000${request.ip}`;
          if (security && request.headers.authorization !== undefined) {
            const wait = Math.max(security.signInLimiter.take(attempt), security.signInAddressLimiter.take(request.ip));
            if (wait > 0) {
              void reply.header('retry-after', String(wait));
              throw new HubError(429, 'too_many_requests', `too many password attempts; try again in ${wait} s`);
            }
          }
          const refusal = await central.admit(chargePointId, request.headers.authorization);
          if (refusal)
            throw new HubError(refusal.status, refusal.status === 401 ? 'unauthorized' : 'not_found', refusal.reason);
          security?.signInLimiter.reset(attempt);
        },
      },
      (socket, request) => {
        const { chargePointId } = request.params as { chargePointId: string };
        // The hub chose ocpp1.6 or refused the upgrade; this guards a socket that got here otherwise.
        if (socket.protocol !== OCPP_SUBPROTOCOL) {
          socket.close(1002, `subprotocol must be ${OCPP_SUBPROTOCOL}`);
          return;
        }
        const connection = central.connect(chargePointId, {
          send: (text) => {
            if (socket.readyState === socket.OPEN) socket.send(text);
          },
          close: (code, reason) => socket.close(code, reason),
        });
        socket.on('message', (data: Buffer, isBinary: boolean) => {
          if (isBinary || data.length > MAX_FRAME_BYTES) {
            socket.close(1003, 'OCPP-J frames are JSON text');
            return;
          }
          connection.receive(data.toString('utf8'));
        });
        socket.on('close', () => connection.closed());
        socket.on('error', () => connection.closed());
      },
    );
  };
}
