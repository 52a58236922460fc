// Everything an identity emulator run remembers between requests: the live scenario (which the
// admin API edits), issued codes and tokens, sign-in sessions, counters and armed failures.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EmulatorClock } from '../clock.ts';
import type { Scenario, User } from '../scenario/schema.ts';
import { AadError } from './aad-error.ts';
import { isAadstsCode } from './aadsts-catalogue.ts';
import type { SigningKey } from './signing-keys.ts';
import type { OidcScope, Permission } from './scopes.ts';

/** Who signed in, when and how: carried from sign-in into codes and refresh tokens. */
export interface SignIn {
  userId: string;
  authTimeSec: number;
  amr: string[];
  sessionId: string;
}

export interface AuthorizationCodeRecord {
  clientId: string;
  tenantId: string;
  redirectUri: string;
  codeChallenge?: string;
  codeChallengeMethod?: 'S256' | 'plain';
  nonce?: string;
  permissions: Permission[];
  directives: OidcScope[];
  signIn: SignIn;
  issuedAtMs: number;
  redeemed: boolean;
  spa: boolean;
}

export interface RefreshTokenRecord {
  clientId: string;
  userId: string;
  tenantId: string;
  issuedAtMs: number;
  /** When the first token of this grant was issued (SPA tokens never outlive it by 24 h; AADSTS50173 names it). */
  grantIssuedAtMs: number;
  revoked: boolean;
  spa: boolean;
  authTimeSec: number;
  amr: string[];
  sessionId: string;
}

export interface DeviceCodeRecord {
  deviceCode: string;
  userCode: string;
  clientId: string;
  authoritySegment: string;
  permissions: Permission[];
  directives: OidcScope[];
  issuedAtMs: number;
  expiresAtMs: number;
  status: 'pending' | 'approved' | 'declined' | 'redeemed';
  signIn?: SignIn;
}

/** Opaque access tokens (personal accounts) the mail servers look up instead of verifying. */
export interface OpaqueTokenRecord {
  claims: Record<string, unknown>;
  expiresAtSec: number;
}

export interface Session {
  id: string;
  /** Signed-in users (the account picker lists them), newest last. */
  signIns: SignIn[];
}

export interface ArmedFailure {
  id: string;
  aadsts: number;
  endpoint: 'token' | 'authorize' | 'devicecode' | 'any';
  grantType?: string;
  clientId?: string;
  user?: string;
  remaining?: number;
  params: Record<string, string>;
}

/** The identity service failing below the OAuth layer: a 500 page, a body that is not JSON, no answer. */
export interface ArmedOutage {
  id: string;
  endpoint: 'token' | 'devicecode' | 'any';
  kind: 'http500' | 'garbage' | 'hang';
  remaining?: number;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export class IdentityState {
  readonly scenario: Scenario;
  readonly clock: EmulatorClock;
  readonly signingKey: SigningKey;
  /** `https://host:port` as clients reach the emulator. */
  origin = '';
  readonly codes = new Map<string, AuthorizationCodeRecord>();
  readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly deviceCodes = new Map<string, DeviceCodeRecord>();
  readonly opaqueTokens = new Map<string, OpaqueTokenRecord>();
  readonly sessions = new Map<string, Session>();
  readonly failures: ArmedFailure[] = [];
  readonly outages: ArmedOutage[] = [];
  readonly counters = new Map<string, number>();

  constructor(scenario: Scenario, clock: EmulatorClock, signingKey: SigningKey) {
    this.scenario = scenario;
    this.clock = clock;
    this.signingKey = signingKey;
    for (const f of scenario.failures) {
      this.armFailure({ ...f, ...(f.times ? { remaining: f.times } : {}) });
    }
  }

  count(endpoint: string, detail?: string): void {
    this.counters.set(endpoint, (this.counters.get(endpoint) ?? 0) + 1);
    if (detail) this.counters.set(`${endpoint}:${detail}`, (this.counters.get(`${endpoint}:${detail}`) ?? 0) + 1);
  }

  /** Counters as `{ token: { total, authorization_code, ... }, authorize: { total } }`. */
  counterReport(): Record<string, Record<string, number>> {
    const report: Record<string, Record<string, number>> = {};
    for (const [key, value] of this.counters) {
      const [endpoint = key, detail] = key.split(':');
      report[endpoint] ??= { total: 0 };
      if (detail) report[endpoint][detail] = value;
      else report[endpoint].total = value;
    }
    return report;
  }

  armFailure(failure: Omit<ArmedFailure, 'id'> & { id?: string; times?: number }): ArmedFailure {
    if (!isAadstsCode(failure.aadsts)) throw new RangeError(`AADSTS${failure.aadsts} is not in the emulator's catalogue`);
    const armed: ArmedFailure = {
      id: failure.id ?? randomUUID(),
      aadsts: failure.aadsts,
      endpoint: failure.endpoint,
      params: failure.params,
      ...(failure.grantType ? { grantType: failure.grantType } : {}),
      ...(failure.clientId ? { clientId: failure.clientId.toLowerCase() } : {}),
      ...(failure.user ? { user: failure.user.toLowerCase() } : {}),
      ...((failure.remaining ?? failure.times) ? { remaining: failure.remaining ?? failure.times } : {}),
    };
    this.failures.push(armed);
    return armed;
  }

  /** Raises an armed failure matching this request, if any (spending one of its uses). */
  checkFailures(endpoint: ArmedFailure['endpoint'], request: { grantType?: string; clientId?: string; user?: User }): void {
    const index = this.failures.findIndex(
      (f) =>
        (f.endpoint === endpoint || f.endpoint === 'any') &&
        (!f.grantType || f.grantType === request.grantType) &&
        (!f.clientId || f.clientId === request.clientId?.toLowerCase()) &&
        (!f.user || f.user === request.user?.userPrincipalName.toLowerCase()),
    );
    if (index < 0) return;
    const failure = this.failures[index]!;
    if (failure.remaining !== undefined && --failure.remaining <= 0) this.failures.splice(index, 1);
    if (!isAadstsCode(failure.aadsts)) return;
    throw new AadError(failure.aadsts, {
      appId: request.clientId,
      user: request.user?.userPrincipalName,
      resource: '00000002-0000-0ff1-ce00-000000000000',
      ...failure.params,
    });
  }

  /** An armed outage for this endpoint, if any (spending one of its uses). */
  takeOutage(endpoint: 'token' | 'devicecode'): ArmedOutage | undefined {
    const index = this.outages.findIndex((o) => o.endpoint === endpoint || o.endpoint === 'any');
    if (index < 0) return undefined;
    const outage = this.outages[index]!;
    if (outage.remaining !== undefined && --outage.remaining <= 0) this.outages.splice(index, 1);
    return outage;
  }

  findUserById(id: string): User | undefined {
    return this.scenario.users.find((u) => u.id === id);
  }
}
