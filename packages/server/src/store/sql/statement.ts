import type { SqlDialect, Statement } from './dialect.js';

/** Trusted SQL text spliced into a statement as written: table names and dialect fragments only. */
export class SqlFragment {
  constructor(readonly text: string) {}
}

/** A tagged template that compiles SQL for one dialect. */
export type SqlTag = (strings: TemplateStringsArray, ...values: unknown[]) => Statement;

/**
 * The `sql` tag of a dialect: every interpolated value becomes a parameter
 * written the dialect's way (`?` or `$n`); only a {@link SqlFragment} is
 * spliced as text. So the shared queries are written once, and no value can
 * ever become SQL.
 */
export function sqlTag(dialect: Pick<SqlDialect, 'placeholder'>): SqlTag {
  // A call site's text is the same on every call as long as its fragments are
  // (table names are): compile it once and hand out the same string, so the
  // drivers' statement caches find it without hashing a fresh copy each time.
  const compiled = new WeakMap<TemplateStringsArray, { shape: string; text: string }>();
  return (strings, ...values) => {
    const params: unknown[] = [];
    let shape = '';
    values.forEach((value, i) => {
      if (value instanceof SqlFragment) shape += `${i}:${value.text}\u0000`;
      // Drivers differ on undefined (better-sqlite3 refuses it): NULL is what every caller means.
      else params.push(value === undefined ? null : value);
    });
    const hit = compiled.get(strings);
    if (hit !== undefined && hit.shape === shape) return { text: hit.text, params };
    let text = strings[0] ?? '';
    let placeholders = 0;
    values.forEach((value, i) => {
      text += value instanceof SqlFragment ? value.text : dialect.placeholder(placeholders++);
      text += strings[i + 1] ?? '';
    });
    compiled.set(strings, { shape, text });
    return { text, params };
  };
}

/** A migration step or other parameterless multi-statement text. */
export function script(text: string): Statement {
  return { text, params: [], script: true };
}

/** Marks a statement to be kept prepared (see {@link Statement.prepared}). */
export function prepared(statement: Statement): Statement {
  return { ...statement, prepared: true };
}
