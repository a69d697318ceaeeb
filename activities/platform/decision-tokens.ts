import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool } from '../../common/db.ts';
import type { DecisionClaims, ProofCheck } from '../../interpreter/approvals.ts';

/**
 * Decision tokens: the proof an approval decision carries of who sent it. The API signs one for
 * every update it sends (`decideApproval`, channel `api`) and offers one per eligible approver
 * and pending step in the inbox, for the Temporal Web / CLI signal (channel `signal`). A token is
 * `dt1.<claims>.<mac>`: base64url JSON claims (run, step path, stage, principal, groups, channel,
 * expiry) and an HMAC-SHA256 over them. Workers verify it in the platform activity
 * `verifyDecisionToken`; the workflow then checks the claims against the run, the step and its
 * own clock (interpreter/approvals.ts checkProof), so no key and no crypto is in workflow code.
 *
 * The key is `APPROVAL_SIGNING_KEY` when set (the same on the API and every worker), otherwise a
 * random 32-byte key the first process creates in the platform database (table
 * `platform_secrets`), which the API and the workers share already.
 */

const PREFIX = 'dt1';
const SECRET_NAME = 'approval-signing-key';

export class DecisionKeys {
  private key: Promise<Buffer> | undefined;

  constructor(
    private readonly pool: Pool | undefined,
    private readonly configured?: string,
  ) {}

  /** The signing key; created once in the database when no key is configured. */
  get(): Promise<Buffer> {
    this.key ??= this.load().catch((error: unknown) => {
      this.key = undefined; // a database hiccup is not remembered
      throw error;
    });
    return this.key;
  }

  private async load(): Promise<Buffer> {
    if (this.configured) return Buffer.from(this.configured, 'utf8');
    if (!this.pool) throw new Error('no APPROVAL_SIGNING_KEY and no database to keep one in');
    await this.pool.query('INSERT INTO platform_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      SECRET_NAME,
      randomBytes(32).toString('base64url'),
    ]);
    const { rows } = await this.pool.query<{ secret: string }>('SELECT secret FROM platform_secrets WHERE name = $1', [SECRET_NAME]);
    const secret = rows[0]?.secret;
    if (!secret) throw new Error('the approval signing key could not be read from platform_secrets');
    return Buffer.from(secret, 'base64url');
  }
}

const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(`${PREFIX}.${body}`).digest();

/** Signs claims into a token. */
export async function signDecisionToken(keys: DecisionKeys, claims: DecisionClaims): Promise<string> {
  const body = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
  return `${PREFIX}.${body}.${mac(await keys.get(), body).toString('base64url')}`;
}

/** Checks a token's signature and shape; the workflow checks what it is bound to. */
export async function verifyDecisionToken(keys: DecisionKeys, token: unknown): Promise<ProofCheck> {
  if (typeof token !== 'string' || token.length === 0) return { valid: false, reason: 'no decision token' };
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return { valid: false, reason: 'the decision token is malformed' };
  const [, body, signature] = parts as [string, string, string];
  const expected = mac(await keys.get(), body);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'the decision token\'s signature is not valid' };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { valid: false, reason: 'the decision token is malformed' };
  }
  const c = claims as Partial<DecisionClaims>;
  const shaped =
    typeof c.run === 'string' &&
    typeof c.step === 'string' &&
    typeof c.principal === 'string' &&
    Array.isArray(c.groups) &&
    c.groups.every((g) => typeof g === 'string') &&
    (c.channel === 'api' || c.channel === 'signal') &&
    typeof c.exp === 'number' &&
    (c.stage === undefined || typeof c.stage === 'number') &&
    (c.decision === undefined || c.decision === 'approve' || c.decision === 'reject');
  if (!shaped) return { valid: false, reason: 'the decision token is malformed' };
  return { valid: true, claims: c as DecisionClaims };
}
