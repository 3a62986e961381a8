import { describe, expect, it } from 'vitest';
import {
  deriveSuccessor,
  hashSecret,
  newRefreshToken,
  parseRefreshToken,
  secretMatches,
} from './refresh-token.js';

describe('refresh tokens', () => {
  it('have the documented format and 256 random bits of secret', () => {
    const rt = newRefreshToken();
    expect(rt.token).toMatch(/^brt_[A-Za-z0-9_.-]+$/);
    expect(rt.secret).toHaveLength(32);
    expect(parseRefreshToken(rt.token)).toEqual({ id: rt.id, secret: rt.secret });
    expect(newRefreshToken().token).not.toBe(rt.token);
  });

  it('store only a hash, checked in constant time', () => {
    const rt = newRefreshToken();
    expect(rt.hash).not.toContain(rt.secret.toString('base64url'));
    expect(secretMatches(rt.secret, rt.hash)).toBe(true);
    expect(secretMatches(Buffer.alloc(32), rt.hash)).toBe(false);
    expect(secretMatches(rt.secret, 'short')).toBe(false);
  });

  it('refuses anything not exactly in format, including every single flipped character', () => {
    const rt = newRefreshToken().token;
    for (const bad of [
      '',
      'brt_',
      rt.slice(1),
      `${rt}x`,
      rt.replace('.', '-'),
      ` ${rt}`,
      rt.toUpperCase(),
      42,
      null,
    ]) {
      expect(parseRefreshToken(bad)).toBeNull();
    }
  });

  it('never lets a one-character change authenticate as the original token', () => {
    // What a flipped character must not do is pass the lookup id AND the stored hash of the
    // token it came from. Most flips stay well-formed, so the check below really runs: the
    // count at the end proves it did, instead of every case slipping through a null parse.
    const original = newRefreshToken();
    let wellFormed = 0;
    for (let i = 4; i < original.token.length; i++) {
      for (const c of ['A', 'z', '0', '-', '_', '.']) {
        if (original.token[i] === c) continue;
        const flipped = original.token.slice(0, i) + c + original.token.slice(i + 1);
        const parsed = parseRefreshToken(flipped);
        if (parsed === null) continue;
        wellFormed++;
        expect(parsed.id === original.id && secretMatches(parsed.secret, original.hash)).toBe(false);
      }
    }
    expect(wellFormed).toBeGreaterThan(original.token.length * 3);
  });

  it('refuses non-canonical base64url (same bytes, other spelling)', () => {
    const rt = newRefreshToken();
    const text = rt.secret.toString('base64url');
    // The last of 43 characters carries 2 unused bits: setting one keeps the bytes, changes the text.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(text.at(-1)!);
    const sibling = alphabet[last ^ 1]!;
    const forged = `brt_${rt.id}.${text.slice(0, -1)}${sibling}`;
    expect(Buffer.from(`${text.slice(0, -1)}${sibling}`, 'base64url').equals(rt.secret)).toBe(true);
    expect(parseRefreshToken(forged)).toBeNull();
  });

  it('accepts a last character of the id or the secret exactly when the text is canonical', () => {
    // Every possible last character, in both halves: a token parses if and only if decoding
    // and encoding again gives back the very text, the check the format stands in for.
    const rt = newRefreshToken();
    const id = rt.id;
    const secret = rt.secret.toString('base64url');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const canonical = (text: string) => Buffer.from(text, 'base64url').toString('base64url') === text;
    let accepted = 0;
    for (const c of alphabet) {
      const otherId = id.slice(0, -1) + c;
      const otherSecret = secret.slice(0, -1) + c;
      const byId = parseRefreshToken(`brt_${otherId}.${secret}`);
      const bySecret = parseRefreshToken(`brt_${id}.${otherSecret}`);
      expect(byId !== null).toBe(canonical(otherId));
      expect(bySecret !== null).toBe(canonical(otherSecret));
      if (bySecret) expect(bySecret.secret.equals(Buffer.from(otherSecret, 'base64url'))).toBe(true);
      accepted += Number(byId !== null) + Number(bySecret !== null);
    }
    // 4 of 64 characters end a canonical id, 16 a canonical secret.
    expect(accepted).toBe(20);
  });

  it('derive the same successor from the same parent and id, and nothing without the parent', () => {
    const parent = newRefreshToken();
    const a = deriveSuccessor(parent.secret, 'AAAAAAAAAAAAAAAAAAAAAA');
    const b = deriveSuccessor(parent.secret, 'AAAAAAAAAAAAAAAAAAAAAA');
    expect(a.token).toBe(b.token);
    expect(a.hash).toBe(hashSecret(a.secret));
    expect(parseRefreshToken(a.token)).not.toBeNull();
    expect(deriveSuccessor(newRefreshToken().secret, 'AAAAAAAAAAAAAAAAAAAAAA').token).not.toBe(a.token);
    expect(deriveSuccessor(parent.secret, 'BAAAAAAAAAAAAAAAAAAAAA').token).not.toBe(a.token);
  });
});
