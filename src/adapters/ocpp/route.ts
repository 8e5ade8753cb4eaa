import type { FastifyInstance } from 'fastify';
import type { RouteModule } from '../../api/server.ts';
import { HubError } from '../../core/errors.ts';
import type { OcppCentralSystem } from './central-system.ts';
import { OCPP_SUBPROTOCOL } from './rpc.ts';

/** OCPP frames are small; 64 KiB is far beyond any legitimate message and bounds a hostile one. */
const MAX_FRAME_BYTES = 64 * 1024;

/**
 * `/ocpp/{chargePointId}`: the WebSocket charge points connect to. Authentication is OCPP's own
 * (Basic auth with the charge point id as the user), checked before the upgrade so an unknown or
 * wrong charge point never gets a socket.
 */
export function ocppRoute(central: OcppCentralSystem): RouteModule {
  return (app: FastifyInstance) => {
    app.get(
      '/ocpp/:chargePointId',
      {
        websocket: true,
        config: { public: true },
        schema: {
          params: {
            type: 'object',
            required: ['chargePointId'],
            properties: { chargePointId: { type: 'string', maxLength: 48 } },
          },
        },
        preValidation: async (request) => {
          const offered = String(request.headers['sec-websocket-protocol'] ?? '')
            .split(',')
            .map((p) => p.trim());
          if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
            throw new HubError(426, 'upgrade_required', 'OCPP 1.6J is spoken over a WebSocket');
          }
          if (!offered.includes(OCPP_SUBPROTOCOL)) {
            throw new HubError(400, 'unsupported_subprotocol', `the WebSocket subprotocol must be ${OCPP_SUBPROTOCOL}`);
          }
          const { chargePointId } = request.params as { chargePointId: string };
          const refusal = await central.admit(chargePointId, request.headers.authorization);
          if (refusal)
            throw new HubError(refusal.status, refusal.status === 401 ? 'unauthorized' : 'not_found', refusal.reason);
        },
      },
      (socket, request) => {
        const { chargePointId } = request.params as { chargePointId: string };
        // ws picks the client's first offered subprotocol unless the server chooses; a client
        // that put another one first is not speaking OCPP 1.6J to us.
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
