import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CredentialCheck, hashPassword, verifyPassword } from '../src/people/credentials.ts';

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
    // Counted when each scrypt starts, not when it ends: how long each takes is the machine's
    // (a loaded one finished CP-D's after six of CP-A's that started after it).
    const started: string[] = [];
    const check = new CredentialCheck(
      (id) => hashes.get(id),
      (password, stored) => {
        started.push(password.startsWith('right-for-d') ? 'CP-D' : 'CP-A');
        return verifyPassword(password, stored);
      },
    );
    const wrong = Array.from({ length: 12 }, (_, i) => check.check('CP-A', `wrong-${i}`));
    const right = check.check('CP-D', 'right-for-d-0123456');
    assert.deepEqual(await Promise.all(wrong), Array(12).fill(false));
    assert.equal(await right, true);
    // Two run at once; then CP-A and CP-D take turns: CP-D's check is the fourth to start.
    assert.equal(started.length, 13);
    assert.equal(started.indexOf('CP-D'), 3, `CP-D started after ${started.indexOf('CP-D')} wrong checks`);
  });
});
