import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import type { Hub } from '../src/core/hub.ts';
import { createLogger } from '../src/core/log.ts';
import { createTriad } from '../src/triad.ts';
import { browserMissing, launchChromium, openPage } from './helpers/browser.ts';
import { eventually, tempDir } from './helpers/hub-process.ts';

/**
 * A charge point's card on the dashboard's Home view, in Debian's Chromium: its meter and the
 * energy of the charge under way are two readings with two names, not two called "Energy". The
 * charge point speaks OCPP 1.6J over a real WebSocket. Needs `npm run build` after web/src changes.
 */

const skip = browserMissing();
const PASSWORD = 'Dashboard-Key-0123456789';

describe("a charger's card on the dashboard", { skip: skip ?? false }, () => {
  let hub: Hub;
  let browser: Browser;
  let socket: WebSocket;

  before(async () => {
    hub = createTriad({
      dataDir: await tempDir(),
      http: { port: 0, host: '127.0.0.1' },
      mqtt: { port: 0, host: '127.0.0.1' },
      log: createLogger({ level: 'silent' }),
    });
    await hub.start();
    browser = await launchChromium();
  });

  after(async () => {
    socket?.close();
    await browser?.close();
    await hub?.stop();
  });

  it('names the meter reading and the energy of this charge apart', async () => {
    const res = await fetch(`${hub.httpUrl}/api/chargers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.ownerToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ chargePointId: 'CP-CARD', name: 'Driveway', password: PASSWORD }),
    });
    assert.equal(res.status, 201);
    const { ocpp } = (await res.json()) as { ocpp: { path: string } };
    socket = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(hub.httpUrl.replace('http', 'ws') + ocpp.path, ['ocpp1.6'], {
        headers: { authorization: `Basic ${Buffer.from(`CP-CARD:${PASSWORD}`).toString('base64')}` },
      });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
    const answers: unknown[][] = [];
    socket.on('message', (data) => answers.push(JSON.parse(String(data)) as unknown[]));
    const call = async (id: string, action: string, payload: Record<string, unknown>) => {
      socket.send(JSON.stringify([2, id, action, payload]));
      return (await eventually(() => answers.find((f) => f[0] === 3 && f[1] === id)))[2] as Record<string, unknown>;
    };
    await call('1', 'StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
    const { transactionId } = await call('2', 'StartTransaction', {
      connectorId: 1,
      idTag: 'B4A63CDF',
      meterStart: 12_000,
      timestamp: new Date().toISOString(),
    });
    await call('3', 'MeterValues', {
      connectorId: 1,
      transactionId,
      meterValue: [
        {
          timestamp: new Date().toISOString(),
          sampledValue: [{ value: '14500', measurand: 'Energy.Active.Import.Register', unit: 'Wh' }],
        },
      ],
    });

    const { page, errors } = await openPage(browser, { width: 1280, height: 860 });
    await page.goto(`${hub.httpUrl}/`);
    await page.getByLabel('Token', { exact: true }).fill(hub.ownerToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.goto(`${hub.httpUrl}/#/home`);
    const card = page.getByRole('article', { name: 'Driveway' });
    const reading = (label: string) => card.locator('div', { has: page.getByRole('term').filter({ hasText: label }) });
    await reading('Meter reading')
      .getByRole('definition')
      .filter({ hasText: /^14[.,]5 kWh$/ })
      .waitFor();
    await reading('Energy this charge')
      .getByRole('definition')
      .filter({ hasText: /^2[.,]5 kWh$/ })
      .waitFor();
    const labels = await card.getByRole('term').allTextContents();
    assert.equal(new Set(labels).size, labels.length, `every reading has a name of its own: ${labels.join(', ')}`);
    assert.ok(!labels.includes('Energy'), `no reading is just "Energy": ${labels.join(', ')}`);
    assert.deepEqual(errors, []);
  });
});
