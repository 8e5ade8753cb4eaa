import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { VirtualClock } from '../src/core/clock.ts';
import { startOcppHub } from './helpers/ocpp-charge-point.ts';

/**
 * Wrong OCPP passwords against a real hub, from real `ws` clients on several loopback addresses
 * (127.0.0.0/8 is all loopback): they are limited as sign-ins are, and a flood of them does not
 * hold up another charge point's right one.
 */

const PASSWORD = 'Sup3rSecretKey-0123456789';
/** The sign-in limit the hub is started with: 3 tries, then one a minute (the clock stands still). */
const BURST = 3;

type Answer = { status: number; retryAfter?: string; socket?: WebSocket };

/** One upgrade to `/ocpp/{id}` from `from`, with `password`: 101 and the socket, or the HTTP refusal. */
function attempt(base: string, id: string, password: string, from = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const authorization = `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}`;
    const socket = new WebSocket(`${base}/ocpp/${id}`, ['ocpp1.6'], { headers: { authorization }, localAddress: from });
    socket.once('open', () => resolve({ status: 101, socket }));
    socket.once('unexpected-response', (_request, response) => {
      response.resume();
      const retryAfter = response.headers['retry-after'];
      resolve({
        status: response.statusCode ?? 0,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
      });
    });
    socket.once('error', reject);
  });
}

describe('OCPP password attempts', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 3, 12));
  let ocpp: Awaited<ReturnType<typeof startOcppHub>>;
  let base: string;
  const sockets: WebSocket[] = [];
  const keep = (answer: Answer) => {
    if (answer.socket) sockets.push(answer.socket);
    return answer;
  };

  before(async () => {
    ocpp = await startOcppHub(clock, [], { rateLimits: { signIn: { burst: BURST, perSecond: 1 / 60 } } });
    base = ocpp.wsUrl;
    for (const chargePointId of ['CP-A', 'CP-B', 'CP-D']) await register(chargePointId);
  });

  const register = async (chargePointId: string) => {
    const res = await ocpp.api('/api/chargers', 'POST', { chargePointId, name: chargePointId, password: PASSWORD });
    assert.equal(res.status, 201);
  };

  after(async () => {
    for (const socket of sockets) socket.terminate();
    await ocpp.hub.stop();
  });

  it('answers 429 with Retry-After once an address has used up its tries for a charge point', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => attempt(base, 'CP-A', `wrong-password-${i}`, '127.0.0.2')),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 401).length, BURST, String(statuses));
    assert.equal(statuses.filter((status) => status === 429).length, 12 - BURST, String(statuses));
    for (const answer of answers.filter((a) => a.status === 429)) assert.ok(Number(answer.retryAfter) > 0);
    // The right password from that address waits too, as a sign-in does; from elsewhere it opens.
    assert.equal((await attempt(base, 'CP-A', PASSWORD, '127.0.0.2')).status, 429);
    assert.equal(keep(await attempt(base, 'CP-A', PASSWORD, '127.0.0.1')).status, 101);
    assert.equal(keep(await attempt(base, 'CP-D', PASSWORD, '127.0.0.1')).status, 101);
  });

  it('forgets a charge point’s failures once its right password comes', async () => {
    const from = '127.0.0.4';
    for (let i = 0; i < BURST - 1; i++) assert.equal((await attempt(base, 'CP-B', 'wrong', from)).status, 401);
    assert.equal(keep(await attempt(base, 'CP-B', PASSWORD, from)).status, 101);
    for (let i = 0; i < BURST; i++) assert.equal((await attempt(base, 'CP-B', 'wrong', from)).status, 401);
    assert.equal((await attempt(base, 'CP-B', 'wrong', from)).status, 429);
  });

  it('limits an address that tries a new charge point id each time', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) statuses.push((await attempt(base, `CP-X${i}`, PASSWORD, '127.0.0.3')).status);
    assert.ok(statuses.includes(401), String(statuses));
    assert.ok(statuses.includes(429), String(statuses));
  });

  it('lets a new charge point in promptly while wrong passwords from many addresses queue up', async () => {
    // New, so its first right password is a slow check too (a known one is remembered).
    await register('CP-E');
    // One try each, from twenty addresses: within every limit, so each costs a slow check.
    const done: string[] = [];
    const attacks = Array.from({ length: 20 }, (_, i) =>
      attempt(base, 'CP-A', `wrong-password-${i}`, `127.0.0.${10 + i}`).then((answer) => {
        done.push('attack');
        return answer;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const login = keep(await attempt(base, 'CP-E', PASSWORD, '127.0.0.5'));
    done.push('login');
    assert.equal(login.status, 101);
    const statuses = (await Promise.all(attacks)).map((answer) => answer.status);
    assert.deepEqual(new Set(statuses), new Set([401]));
    // In one queue the login came after every attack before it; now CP-A's checks take turns with it.
    assert.ok(done.indexOf('login') < 8, `the login came after ${done.indexOf('login')} wrong passwords`);
  });
});
