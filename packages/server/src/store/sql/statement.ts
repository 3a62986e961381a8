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
  return (strings, ...values) => {
    const params: unknown[] = [];
    let text = strings[0] ?? '';
    values.forEach((value, i) => {
      if (value instanceof SqlFragment) text += value.text;
      else {
        // Drivers differ on undefined (better-sqlite3 refuses it): NULL is what every caller means.
        params.push(value === undefined ? null : value);
        text += dialect.placeholder(params.length - 1);
      }
      text += strings[i + 1] ?? '';
    });
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
