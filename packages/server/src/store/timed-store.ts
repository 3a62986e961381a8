import type { Store } from './store.js';

/** Receives one store call's duration: the `Store` method, whether it threw, and seconds. */
export type StoreTimer = (operation: string, outcome: 'ok' | 'error', seconds: number) => void;

/** Methods that are not a query: they are passed through untimed. */
const UNTIMED = new Set(['dialect', 'close']);

/**
 * The store with every method timed at its boundary (one unit of work, so
 * a transaction counts once, with its retries), for the store-latency
 * histogram. Behaviour is unchanged: results and errors pass through as
 * they are. The one place store timing is measured.
 */
export function timedStore(store: Store, observe: StoreTimer): Store {
  const wrappers = new Map<PropertyKey, unknown>();
  // A Proxy rather than a copy: a store that is a class instance keeps its prototype methods.
  return new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || typeof name !== 'string' || UNTIMED.has(name)) return value;
      let wrapped = wrappers.get(name);
      if (!wrapped) {
        const method = value as (...args: unknown[]) => Promise<unknown>;
        wrapped = async (...args: unknown[]) => {
          const start = process.hrtime.bigint();
          const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
          try {
            const result = await method.apply(target, args);
            observe(name, 'ok', seconds());
            return result;
          } catch (err) {
            observe(name, 'error', seconds());
            throw err;
          }
        };
        wrappers.set(name, wrapped);
      }
      return wrapped;
    },
  });
}
