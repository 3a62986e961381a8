/**
 * The fake server's DPoP checks (RFC 9449 §4.3, as far as a client can get
 * them wrong) and its nonces, as docs/dpop.md describes the real ones:
 * signatures verified with WebCrypto, `htu` against the fake's origin, a
 * `jti` accepted once, and a proof fresh by its `iat` (60 s behind to 5 s
 * ahead) or by a nonce under five minutes old.
 */
import { thumbprint } from '../dpop-proof.js';
import type { ManualClock } from './fake-baton.js';

/** A DPoP proof the fake received, decoded (whatever its fate). */
export interface SeenProof {
  path: string;
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** What the fake answered for it: accepted, or the error code. */
  outcome: 'accepted' | 'use_dpop_nonce' | 'invalid_dpop_proof';
}

/** Why a proof is refused. */
type ProofError = 'use_dpop_nonce' | 'invalid_dpop_proof';

/** How long a fake nonce is accepted, as the server's (docs/dpop.md). */
const NONCE_LIFETIME_MS = 5 * 60_000;

const fromB64url = (text: string) => new TextDecoder().decode(bytesFromB64url(text));

function bytesFromB64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Proof checks and nonces of one fake server. */
export class FakeDpop {
  /** Every proof received, decoded, in order. */
  readonly proofs: SeenProof[] = [];
  /** When set, a proof without a nonce is always answered `use_dpop_nonce`. */
  requireNonce = false;
  /** Nonces handed out → when. */
  private readonly nonces = new Map<string, number>();
  private currentNonce = '';
  private counter = 0;
  private readonly spentJtis = new Set<string>();

  constructor(
    private readonly origin: string,
    private readonly clock: ManualClock,
  ) {}

  /** Forgets every nonce handed out (as if they expired). */
  expireNonces(): void {
    this.nonces.clear();
    this.currentNonce = '';
  }

  /** The current nonce; a new one once it is a minute old, as the server does. */
  nonce(): string {
    const issued = this.nonces.get(this.currentNonce);
    if (issued === undefined || this.clock.ms - issued >= 60_000) {
      this.currentNonce = `nonce_${++this.counter}`;
      this.nonces.set(this.currentNonce, this.clock.ms);
    }
    return this.currentNonce;
  }

  /** RFC 9449 §4.3, as far as a client can get it wrong: the key's thumbprint, or the error answer. */
  async check(jwt: string, path: string): Promise<{ jkt: string } | { error: ProofError }> {
    const refuse = (error: ProofError, seenProof?: SeenProof) => {
      if (seenProof) seenProof.outcome = error;
      return { error };
    };
    const parts = jwt.split('.');
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      header = JSON.parse(fromB64url(parts[0] ?? '')) as Record<string, unknown>;
      payload = JSON.parse(fromB64url(parts[1] ?? '')) as Record<string, unknown>;
    } catch {
      return refuse('invalid_dpop_proof');
    }
    const seenProof: SeenProof = { path, header, payload, outcome: 'accepted' };
    this.proofs.push(seenProof);
    const jwk = header['jwk'] as Record<string, string> | undefined;
    if (
      parts.length !== 3 ||
      header['typ'] !== 'dpop+jwt' ||
      header['alg'] !== 'ES256' ||
      typeof jwk !== 'object' ||
      jwk === null ||
      'd' in jwk ||
      jwk['kty'] !== 'EC' ||
      jwk['crv'] !== 'P-256'
    )
      return refuse('invalid_dpop_proof', seenProof);
    let valid = false;
    try {
      const key = await crypto.subtle.importKey(
        'jwk',
        { kty: 'EC', crv: 'P-256', x: jwk['x'], y: jwk['y'] },
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['verify'],
      );
      valid = await crypto.subtle.verify(
        { name: 'ECDSA', hash: 'SHA-256' },
        key,
        bytesFromB64url(parts[2] ?? ''),
        new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
      );
    } catch {
      valid = false;
    }
    const htu = typeof payload['htu'] === 'string' ? payload['htu'].replace(/[?#].*$/, '') : '';
    if (
      !valid ||
      payload['htm'] !== 'POST' ||
      htu !== `${this.origin}${path}` ||
      typeof payload['iat'] !== 'number' ||
      typeof payload['jti'] !== 'string'
    )
      return refuse('invalid_dpop_proof', seenProof);
    const jkt = await thumbprint({ crv: 'P-256', kty: 'EC', x: jwk['x'] ?? '', y: jwk['y'] ?? '' });
    const nonce = payload['nonce'];
    const iatMs = payload['iat'] * 1000;
    const fresh =
      nonce === undefined
        ? !this.requireNonce && iatMs >= this.clock.ms - 60_000 && iatMs <= this.clock.ms + 5_000
        : typeof nonce === 'string' &&
          this.nonces.has(nonce) &&
          this.clock.ms - this.nonces.get(nonce)! < NONCE_LIFETIME_MS;
    if (!fresh) return refuse('use_dpop_nonce', seenProof);
    const replayKey = `${jkt}.${payload['jti']}`;
    if (this.spentJtis.has(replayKey)) return refuse('invalid_dpop_proof', seenProof);
    this.spentJtis.add(replayKey);
    return { jkt };
  }
}
