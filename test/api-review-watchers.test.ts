import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Watchers } from '../src/core/watchers.ts';

/**
 * A key that ends (a revoked token) ends every connection watching it: one whose callback throws
 * does not leave the others open, with their callbacks forgotten and never called.
 */
describe('API review: watchers', () => {
  it('calls every callback of an ending key even when one throws, then reports the error', () => {
    const watchers = new Watchers<string>();
    const ended: string[] = [];
    watchers.add('token', () => ended.push('first'));
    watchers.add('token', () => {
      throw new Error('a socket that would not close');
    });
    watchers.add('token', () => ended.push('third'));
    watchers.add('other', () => ended.push('other'));
    assert.throws(() => watchers.end('token'), /a socket that would not close/);
    assert.deepEqual(ended, ['first', 'third']);
    assert.equal(watchers.size, 1, 'only the other key is still watched');
    watchers.end('token');
    assert.deepEqual(ended, ['first', 'third'], 'each called once');
  });
});
