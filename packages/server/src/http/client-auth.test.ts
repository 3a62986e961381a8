import { describe, expect, it } from 'vitest';
import { isBatonError } from '../core/errors.js';
import { readClientCredentials } from './client-auth.js';

/** Basic credentials as RFC 6749 §2.3.1 builds them: form-urlencode each half, then base64. */
const basic = (id: string, secret: string) => {
  const enc = (s: string) => encodeURIComponent(s).replaceAll('%20', '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
};

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return isBatonError(e) ? e.code : `unexpected: ${String(e)}`;
  }
};

describe('readClientCredentials', () => {
  it('reads client_secret_basic, form-decoding both halves', () => {
    expect(readClientCredentials(basic('my client', 'p:ss+w%rd'), {})).toEqual({
      clientId: 'my client',
      secret: 'p:ss+w%rd',
      method: 'client_secret_basic',
    });
    expect(readClientCredentials(basic('rs', 's'), { client_id: 'rs' })?.method).toBe('client_secret_basic');
  });

  it('reads client_secret_post and none from the parameters', () => {
    expect(readClientCredentials(undefined, { client_id: 'rs', client_secret: 's' })).toEqual({
      clientId: 'rs',
      secret: 's',
      method: 'client_secret_post',
    });
    expect(readClientCredentials(undefined, { client_id: 'app' })).toEqual({
      clientId: 'app',
      secret: null,
      method: 'none',
    });
    expect(readClientCredentials(undefined, {})).toBeNull();
  });

  it('refuses two methods at once, or a client_id that contradicts Basic', () => {
    expect(codeOf(() => readClientCredentials(basic('rs', 's'), { client_secret: 's' }))).toBe(
      'invalid_request',
    );
    expect(codeOf(() => readClientCredentials(basic('rs', 's'), { client_id: 'other' }))).toBe(
      'invalid_request',
    );
    expect(codeOf(() => readClientCredentials(undefined, { client_secret: 's' }))).toBe('invalid_request');
  });

  it('answers malformed or foreign Authorization headers with invalid_client', () => {
    const bad = [
      'Bearer abc',
      'Basic',
      'Basic !!!',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
      `Basic ${Buffer.from(':secret').toString('base64')}`,
      `Basic ${Buffer.from('id:%E0%A4%A').toString('base64')}`,
      `Basic ${Buffer.from([0x69, 0x64, 0x3a, 0xff]).toString('base64')}`,
      basic('x'.repeat(600), 's'),
    ];
    for (const header of bad) expect(codeOf(() => readClientCredentials(header, {}))).toBe('invalid_client');
  });
});
