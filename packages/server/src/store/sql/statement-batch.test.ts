import { describe, expect, it } from 'vitest';
import { type BatchedStatement, createStatementBatch } from './statement-batch.js';

/**
 * The queue's own rules, with plain functions standing in for the two ways
 * of running a statement (what they answer is computed from the input, and
 * every call is recorded). The SQL behind them is tested on PostgreSQL in
 * postgres-store.test.ts and store-turns.ts.
 */
function recorded(overrides: Partial<BatchedStatement<string, string>> = {}) {
  const ones: string[] = [];
  const manys: string[][] = [];
  const statement: BatchedStatement<string, string> = {
    max: 3,
    async one(input) {
      ones.push(input);
      return `one:${input}`;
    },
    async many(inputs) {
      manys.push([...inputs]);
      return inputs.map((i) => `many:${i}`);
    },
    failsAll: () => false,
    ...overrides,
  };
  return { batch: createStatementBatch(statement), ones, manys };
}

describe('statement batch', () => {
  it('the units of one turn share a statement, each answered with its own outcome', async () => {
    const { batch, ones, manys } = recorded();
    expect(await Promise.all(['a', 'b', 'c'].map((x) => batch.submit(x)))).toEqual([
      'many:a',
      'many:b',
      'many:c',
    ]);
    expect(manys).toEqual([['a', 'b', 'c']]);
    expect(ones).toEqual([]);
  });

  it('a unit alone in its turn runs as the single statement', async () => {
    const { batch, ones, manys } = recorded();
    expect(await batch.submit('a')).toBe('one:a');
    expect(await batch.submit('b')).toBe('one:b');
    expect(ones).toEqual(['a', 'b']);
    expect(manys).toEqual([]);
  });

  it('more units than a statement carries go as several statements', async () => {
    const { batch, ones, manys } = recorded();
    const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    expect(await Promise.all(all.map((x) => batch.submit(x)))).toEqual([
      ...['a', 'b', 'c', 'd', 'e', 'f'].map((x) => `many:${x}`),
      'one:g',
    ]);
    expect(manys).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'f'],
    ]);
    expect(ones).toEqual(['g']);
  });

  it('units with one key never share a statement, and a statement lists its units in key order', async () => {
    const { batch, ones, manys } = recorded({ keyOf: (x) => x.slice(0, 1) });
    const got = await Promise.all(['c1', 'a1', 'c2', 'b1', 'c3'].map((x) => batch.submit(x)));
    expect(got).toEqual(['many:c1', 'many:a1', 'one:c2', 'many:b1', 'one:c3']);
    expect(manys).toEqual([['a1', 'b1', 'c1']]);
    // c2 and c3 went in statements of their own, sent in the same turn.
    expect(ones).toEqual(['c2', 'c3']);
  });

  it('a shared statement that fails runs its units one by one, so a bad one fails alone', async () => {
    const { batch, ones, manys } = recorded({
      async many(inputs) {
        manys.push([...inputs]);
        throw new Error('one of them is bad');
      },
      async one(input) {
        ones.push(input);
        if (input === 'bad') throw new Error(`bad unit ${input}`);
        return `one:${input}`;
      },
    });
    const settled = await Promise.allSettled(['a', 'bad', 'c'].map((x) => batch.submit(x)));
    expect(settled).toEqual([
      { status: 'fulfilled', value: 'one:a' },
      { status: 'rejected', reason: new Error('bad unit bad') },
      { status: 'fulfilled', value: 'one:c' },
    ]);
    expect(manys).toEqual([['a', 'bad', 'c']]);
    expect(ones).toEqual(['a', 'bad', 'c']);
  });

  it('a failure that is everyone’s (an outage) is every unit’s answer, with no unit run again', async () => {
    const outage = new Error('database down');
    const { batch, ones } = recorded({
      async many() {
        throw outage;
      },
      failsAll: (e) => e === outage,
    });
    const settled = await Promise.allSettled(['a', 'b'].map((x) => batch.submit(x)));
    expect(settled).toEqual([
      { status: 'rejected', reason: outage },
      { status: 'rejected', reason: outage },
    ]);
    expect(ones).toEqual([]);
  });

  it('a statement that throws before returning a promise fails like one that rejects', async () => {
    const { batch, ones } = recorded({
      many() {
        throw new Error('could not even build it');
      },
    });
    expect(await Promise.all(['a', 'b'].map((x) => batch.submit(x)))).toEqual(['one:a', 'one:b']);
    expect(ones).toEqual(['a', 'b']);
  });

  it('flush sends what is queued at once, without waiting for the turn to end', () => {
    const { batch, manys } = recorded();
    void batch.submit('a');
    void batch.submit('b');
    batch.flush();
    expect(manys).toEqual([['a', 'b']]);
  });
});
