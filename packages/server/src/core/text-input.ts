import { BatonError } from './errors.js';

// C0 (NUL included), DEL and C1: no identifier has a use for them, PostgreSQL
// refuses NUL in text outright (a 500 before this check), and the others
// rewrite what an operator sees in a terminal.
const CONTROL = /\p{Cc}/u;

/**
 * Refuses an identifier-like string (email, client id, session id, scope)
 * that holds a control character: `invalid_request`, checked before any
 * store call so every dialect answers the same 400. Returns the value.
 */
export function assertNoControlCharacters(value: string, field: string): string {
  if (CONTROL.test(value))
    throw new BatonError('invalid_request', `${field} must not contain control characters`);
  return value;
}

/** True when a string holds a C0, DEL or C1 control character. */
export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}
