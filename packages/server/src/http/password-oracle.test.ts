import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signUp, type TestApp, testApp } from '../../test/helpers.js';

/** Issue 9 item 11: the answer to a bad new password must not tell whether the current one was right. */
describe('POST /auth/password is not a guessing oracle', () => {
  let t: TestApp;
  let access: string;
  beforeEach(async () => {
    t = await testApp();
    access = (await signUp(t.app)).access_token;
  });
  afterEach(() => t.close());

  const change = (current: string, next: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/password',
      headers: { authorization: `Bearer ${access}` },
      payload: { current_password: current, new_password: next },
    });

  it('a too-short new password is the same 400 with the right and with a wrong current password', async () => {
    const right = await change('correct horse battery', 'short');
    const wrong = await change('not my password', 'short');
    expect(right.statusCode).toBe(400);
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toEqual(right.json());
    expect(wrong.json().error).toBe('invalid_request');
  });

  it('with an acceptable new password, a wrong current one is still 403 and the right one 204', async () => {
    expect((await change('not my password', 'a brand new secret')).statusCode).toBe(403);
    expect((await change('correct horse battery', 'a brand new secret')).statusCode).toBe(204);
  });
});
