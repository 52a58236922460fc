// A typed client of the emulator's admin API (/_emulator/..., docs/emulator.md): move the clock,
// arm failures, deliver and list messages, read counters and the live scenario. It speaks HTTPS
// to the emulator trusting only the emulator's CA, so it needs no NODE_EXTRA_CA_CERTS.
import { request } from 'node:https';
import { MailbridgeError } from '../errors.ts';
import type { FolderData, MessageMeta } from './exchange/mail-store.ts';
import type { ArmedFailure } from './identity/state.ts';
import type { Failure, MailFailure, Mailbox, Scenario, Settings, Tenant } from './scenario/schema.ts';

/** The admin API answered with an error status (its text is in the message), or could not be reached. */
export class EmulatorAdminError extends MailbridgeError<'rejected' | 'unreachable'> {
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  constructor(status: number, message: string, options: { cause?: unknown } = {}) {
    super(status === 0 ? 'unreachable' : 'rejected', message, options);
    this.name = 'EmulatorAdminError';
    this.status = status;
  }
}

export interface EmulatorClockState {
  /** The emulator's now, ISO 8601. */
  now: string;
  /** How far it is ahead of the real clock. */
  offsetSeconds: number;
}

/** Requests per endpoint, with a `total` and, for the token endpoint, one count per grant type. */
export type EmulatorCounters = Record<string, Record<string, number>>;

/** An identity-platform failure to arm: `aadsts` is any code of the emulator's catalogue. */
export interface IdentityFailureInput {
  aadsts: number;
  /** Default 'token'. */
  endpoint?: Failure['endpoint'];
  grantType?: string;
  clientId?: string;
  /** The user principal name it applies to. */
  user?: string;
  /** How many matching requests fail; default every one until cleared. */
  times?: number;
}

/** A mail-server failure to arm (Exchange under load or in trouble). */
export interface MailFailureInput {
  /** Default 'any'. */
  protocol?: MailFailure['protocol'];
  /** The address it applies to; default every mailbox. */
  mailbox?: string;
  kind: MailFailure['kind'];
  /** For 'throttled': the "Suggested Backoff Time" in milliseconds. */
  backoffMs?: number;
  times?: number;
}

export type ArmedMailFailure = MailFailure & { id: string; remaining?: number };

/** One folder of a mailbox, as the admin API lists it. */
export interface EmulatorFolder {
  folder: string;
  uidValidity: number;
  uidNext: number;
  messages: MessageMeta[];
}

/** The live scenario, plus where the emulator's services are. */
export type EmulatorScenario = Scenario & { identity: string; ca: string; services: Record<string, string> };

export type { FolderData, MessageMeta };

export class EmulatorAdmin {
  readonly #base: string;
  readonly #caPem: string;

  /** `identityUrl` is the emulator's identity URL (`https://localhost:<port>`), `caPem` its CA. */
  constructor(identityUrl: string, caPem: string) {
    this.#base = `${identityUrl.replace(/\/$/, '')}/_emulator`;
    this.#caPem = caPem;
  }

  /** Any admin call (see docs/emulator.md), for what the typed methods do not cover. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        `${this.#base}${path}`,
        {
          method,
          ca: this.#caPem,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (err) => reject(new EmulatorAdminError(0, `emulator admin ${method} ${path}: ${err.message}`, { cause: err })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) {
              reject(new EmulatorAdminError(status, `emulator admin ${method} ${path}: HTTP ${status} ${adminMessage(text)}`));
              return;
            }
            try {
              resolve((text === '' ? undefined : JSON.parse(text)) as T);
            } catch (err) {
              reject(new EmulatorAdminError(status, `emulator admin ${method} ${path}: the answer is not JSON`, { cause: err }));
            }
          });
        },
      );
      req.on('error', (err) => reject(new EmulatorAdminError(0, `emulator admin ${method} ${path}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }

  /** The live scenario: tenants, apps (with secrets and certificates), users (with passwords), mailboxes. */
  scenario(): Promise<EmulatorScenario> {
    return this.request('GET', '/scenario');
  }

  /** The emulator's time: codes, tokens, secrets and idle refresh tokens expire by it. */
  readonly clock = {
    get: (): Promise<EmulatorClockState> => this.request('GET', '/clock'),
    /** Moves time forward (or back, with a negative number) without waiting. */
    advance: (seconds: number): Promise<EmulatorClockState> => this.request('POST', '/clock', { advanceSeconds: seconds }),
    /** Back to the real time. */
    reset: (): Promise<EmulatorClockState> => this.request('POST', '/clock', { reset: true }),
  };

  /** Identity-platform failures (AADSTS errors) that matching requests get instead of an answer. */
  readonly failures = {
    arm: (failure: IdentityFailureInput): Promise<ArmedFailure> => this.request('POST', '/failures', failure),
    list: (): Promise<ArmedFailure[]> => this.request('GET', '/failures'),
    clear: async (): Promise<void> => void (await this.request('DELETE', '/failures')),
  };

  /** Mail-server failures (throttled, unavailable, "authenticated but not connected"). */
  readonly mailFailures = {
    arm: (failure: MailFailureInput): Promise<ArmedMailFailure> => this.request('POST', '/mail-failures', failure),
    list: (): Promise<ArmedMailFailure[]> => this.request('GET', '/mail-failures'),
    clear: async (): Promise<void> => void (await this.request('DELETE', '/mail-failures')),
  };

  readonly mailboxes = {
    /** Delivers a raw RFC 5322 message into a folder (default INBOX); IDLE sessions see it at once. */
    deliver: (address: string, raw: string, options: { folder?: string } = {}): Promise<MessageMeta> =>
      this.request('POST', `/mailboxes/${encodeURIComponent(address)}/messages`, { raw, ...options }),
    /** Every folder of the mailbox with its messages' UIDs, flags, dates and sizes. */
    list: (address: string): Promise<EmulatorFolder[]> => this.request('GET', `/mailboxes/${encodeURIComponent(address)}/messages`),
    /** Set-CASMailbox: turn IMAP, POP or SMTP AUTH off or on for one mailbox. */
    update: (address: string, patch: Partial<Pick<Mailbox, 'imapEnabled' | 'popEnabled' | 'smtpClientAuthenticationDisabled'>>): Promise<Mailbox> =>
      this.request('PATCH', `/mailboxes/${encodeURIComponent(address)}`, patch),
  };

  readonly counters = {
    get: (): Promise<EmulatorCounters> => this.request('GET', '/counters'),
    reset: async (): Promise<void> => void (await this.request('DELETE', '/counters')),
  };

  readonly users = {
    /** Revokes the user's grants: refreshing them then fails with AADSTS50173. */
    revoke: async (upn: string): Promise<void> => void (await this.request('POST', `/users/${encodeURIComponent(upn)}/revoke`)),
  };

  readonly tenants = {
    /** Set-TransportConfig: SMTP AUTH off for the whole tenant, security defaults. */
    update: (tenant: string, patch: Partial<Pick<Tenant, 'smtpClientAuthenticationDisabled' | 'securityDefaults'>>): Promise<Tenant> =>
      this.request('PATCH', `/tenants/${encodeURIComponent(tenant)}`, patch),
  };

  /** Token lifetimes, refresh-token reuse and the other knobs of `settings`. */
  updateSettings(patch: Partial<Settings>): Promise<Settings> {
    return this.request('PATCH', '/settings', patch);
  }
}

/** The admin API's error text (`{"error": ...}` or whatever it sent), kept short. */
function adminMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const said = body.message ?? body.error;
    if (typeof said === 'string') return said.slice(0, 500);
  } catch {
    // not JSON: the text itself
  }
  return text.slice(0, 500);
}
