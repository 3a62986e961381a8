/** How one kind of call runs alone and as one statement for several (see {@link createStatementBatch}). */
export interface BatchedStatement<I, O> {
  /** The most units one statement carries; more in one turn go as several statements. */
  readonly max: number;
  /**
   * Units with equal keys never share a statement, and a statement's units
   * are in key order (so two statements that lock the same rows lock them in
   * the same order). Without it, any units may share one, in arrival order.
   */
  keyOf?(input: I): string;
  /** Runs one unit alone: the single statement, exactly as without batching. */
  one(input: I): Promise<O>;
  /** Runs two or more units as one statement, answering their outcomes in their order. */
  many(inputs: readonly I[]): Promise<O[]>;
  /**
   * Whether a failure of `many` is every unit's answer as it is (the database
   * is out of reach). Any other failure runs the units again one by one, so
   * one bad unit fails alone.
   */
  failsAll(error: unknown): boolean;
}

/** Shares statements among the calls of one event-loop turn. */
export interface StatementBatch<I, O> {
  /** Runs `input` with the other units of this turn, resolving with its own outcome. */
  submit(input: I): Promise<O>;
  /** Sends what is queued now, without waiting for the turn to end (before the pool closes). */
  flush(): void;
}

interface Queued<I, O> {
  input: I;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

/** `fn()`, with a synchronous throw turned into a rejection, so no unit is left unanswered. */
function settle<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (error) {
    return Promise.reject(error);
  }
}

// Taken at load: a test that fakes timers must not stall the database.
const nextTurn = setImmediate;

/**
 * Calls asked for in the same turn of the event loop (the lookups, or the
 * rotations, of concurrent refreshes) go to the database as one statement
 * instead of one each: each statement costs a round trip, a parse/bind/
 * execute and a commit, and the driver's own CPU, whatever it carries.
 *
 * What it guarantees:
 * - every unit is answered with its own outcome, and a unit is never
 *   answered before the statement that carried it has returned (so a write
 *   is reported only once it committed);
 * - units with the same key never share a statement: a second one goes in
 *   another statement of the same turn, sent alongside, and the database
 *   orders the two as it orders any two concurrent statements;
 * - a statement of one unit is that unit's single statement (`one`): alone,
 *   a call costs what it cost before, plus the wait for the turn's end;
 * - if a shared statement fails, its units run again one by one, each with
 *   its single statement (so one bad unit cannot fail the others, and each
 *   gets the single statement's own retries), unless `failsAll` says the
 *   failure is everyone's (an outage), which every unit then receives.
 */
export function createStatementBatch<I, O>(statement: BatchedStatement<I, O>): StatementBatch<I, O> {
  let queue: Queued<I, O>[] = [];

  /** Splits a turn's units into statements: at most `max` each, no key twice in one. */
  function split(units: Queued<I, O>[]): Queued<I, O>[][] {
    const keyOf = statement.keyOf;
    if (!keyOf) {
      const chunks: Queued<I, O>[][] = [];
      for (let i = 0; i < units.length; i += statement.max) chunks.push(units.slice(i, i + statement.max));
      return chunks;
    }
    const chunks: { units: Queued<I, O>[]; keys: Set<string> }[] = [];
    for (const unit of units) {
      const key = keyOf(unit.input);
      let chunk = chunks.find((c) => c.units.length < statement.max && !c.keys.has(key));
      if (!chunk) {
        chunk = { units: [], keys: new Set() };
        chunks.push(chunk);
      }
      chunk.units.push(unit);
      chunk.keys.add(key);
    }
    const order = (a: Queued<I, O>, b: Queued<I, O>) => {
      const x = keyOf(a.input);
      const y = keyOf(b.input);
      return x < y ? -1 : x > y ? 1 : 0;
    };
    return chunks.map((c) => c.units.sort(order));
  }

  function alone(unit: Queued<I, O>): void {
    settle(() => statement.one(unit.input)).then(unit.resolve, unit.reject);
  }

  function send(units: Queued<I, O>[]): void {
    if (units.length === 1) {
      alone(units[0]!);
      return;
    }
    settle(() => statement.many(units.map((u) => u.input))).then(
      (outcomes) => {
        units.forEach((u, i) => {
          u.resolve(outcomes[i]!);
        });
      },
      (error: unknown) => {
        if (statement.failsAll(error)) for (const u of units) u.reject(error);
        else for (const u of units) alone(u);
      },
    );
  }

  function flush(): void {
    const units = queue;
    queue = [];
    if (units.length > 0) for (const chunk of split(units)) send(chunk);
  }

  return {
    submit(input) {
      return new Promise<O>((resolve, reject) => {
        if (queue.length === 0) nextTurn(flush);
        queue.push({ input, resolve, reject });
      });
    },
    flush,
  };
}
