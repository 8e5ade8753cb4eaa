import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialCheck, hashPassword } from '../src/people/credentials.ts';

/**
 * The slow password checks (real scrypt) wait their turn per name: a charger's right password
 * is not held up behind every wrong one sent for another charger before it.
 */
describe('password checks take turns per name', () => {
  it('checks a right password after at most a turn of the wrong ones queued for another name', async () => {
    const hashes = new Map([
      ['CP-A', await hashPassword('right-for-a-0123456')],
      ['CP-D', await hashPassword('right-for-d-0123456')],
    ]);
    const check = new CredentialCheck((id) => hashes.get(id));
    const finished: string[] = [];
    const wrong = Array.from({ length: 12 }, (_, i) =>
      check.check('CP-A', `wrong-${i}`).then((ok) => {
        finished.push('CP-A');
        return ok;
      }),
    );
    const right = check.check('CP-D', 'right-for-d-0123456').then((ok) => {
      finished.push('CP-D');
      return ok;
    });
    assert.deepEqual(await Promise.all(wrong), Array(12).fill(false));
    assert.equal(await right, true);
    // Two run at once; then CP-A and CP-D take turns: CP-D's check is the fourth to start.
    assert.ok(finished.indexOf('CP-D') <= 4, `CP-D finished after ${finished.indexOf('CP-D')} wrong checks`);
  });
});
