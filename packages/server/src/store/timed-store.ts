import type { Store } from './store.js';

/** Receives one store call's duration: the `Store` method, whether it threw, and seconds. */
export type StoreTimer = (operation: string, outcome: 'ok' | 'error', seconds: number) => void;

/** Methods that are not a query: they are passed through untimed. */
const UNTIMED = new Set(['dialect', 'close']);

/** Every method name of an object, its prototypes' included (a store may be a class instance). */
function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = object; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o))
    for (const name of Object.getOwnPropertyNames(o))
      if (name !== 'constructor' && typeof Reflect.get(object, name) === 'function') names.add(name);
  return [...names];
}

/**
 * The store with every method timed at its boundary (one unit of work, so
 * a transaction counts once, with its retries), for the store-latency
 * histogram. Behaviour is unchanged: results and errors pass through as
 * they are. The one place store timing is measured.
 *
 * The wrappers are made once, here: an object whose prototype is the store,
 * with a timed own property per method, so a call costs a plain property
 * read and every other property (`dialect`) reads through to the store.
 */
export function timedStore(store: Store, observe: StoreTimer): Store {
  const timed = Object.create(store) as Record<string, unknown>;
  for (const name of methodNames(store)) {
    if (UNTIMED.has(name)) continue;
    const method = Reflect.get(store, name) as (...args: unknown[]) => Promise<unknown>;
    timed[name] = async (...args: unknown[]) => {
      const start = process.hrtime.bigint();
      const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
      try {
        const result = await method.apply(store, args);
        observe(name, 'ok', seconds());
        return result;
      } catch (err) {
        observe(name, 'error', seconds());
        throw err;
      }
    };
  }
  return timed as unknown as Store;
}
