// What Exchange's three mail servers share in one emulator run: the identity state (tokens,
// scenario), the mailbox store, TLS material, per-mailbox connection caps, armed failures and
// the backend host name that appears in greetings.
import { randomBytes } from 'node:crypto';
import type { IdentityState } from '../identity/state.ts';
import type { MailFailure, Mailbox } from '../scenario/schema.ts';
import type { TlsMaterial } from '../../net/line-server.ts';
import { MailStore, type MailboxData } from './mail-store.ts';
import type { MailProtocol } from './mailbox-access.ts';

export interface ArmedMailFailure extends MailFailure {
  id: string;
  remaining?: number;
}

/** A backend name like Exchange's `SC1PR80CA0058.lamprd80.prod.outlook.com`, one per run. */
function backendHostName(): string {
  const n = randomBytes(3).readUIntBE(0, 3) % 10000;
  return `SC1PR80CA${String(n).padStart(4, '0')}.lamprd80.prod.outlook.com`;
}

export class ExchangeContext {
  readonly identity: IdentityState;
  readonly store: MailStore;
  readonly tls: TlsMaterial;
  /** The front-end name clients connect to, used in SMTP replies. */
  readonly frontendHost: string;
  readonly backendHost = backendHostName();
  readonly failures: ArmedMailFailure[] = [];
  readonly #connections = new Map<string, number>();

  constructor(identity: IdentityState, store: MailStore, tls: TlsMaterial, frontendHost = 'outlook.office365.com') {
    this.identity = identity;
    this.store = store;
    this.tls = tls;
    this.frontendHost = frontendHost;
    for (const f of identity.scenario.mailFailures) this.armFailure(f);
  }

  get settings() {
    return this.identity.scenario.settings.mail;
  }

  /** `[<base64 of UTF-16LE backend FQDN>]`, as Exchange's IMAP and POP3 greetings carry it. */
  get greetingTag(): string {
    return `[${Buffer.from(this.backendHost, 'utf16le').toString('base64')}]`;
  }

  openMailbox(mailbox: Mailbox): Promise<MailboxData> {
    return this.store.open(mailbox.address, mailbox.seed);
  }

  findMailbox(address: string): Mailbox | undefined {
    const wanted = address.trim().toLowerCase();
    return this.identity.scenario.exchange.mailboxes.find((m) => m.address.toLowerCase() === wanted);
  }

  armFailure(failure: MailFailure & { id?: string }): ArmedMailFailure {
    const armed: ArmedMailFailure = { ...failure, id: failure.id ?? crypto.randomUUID(), ...(failure.times ? { remaining: failure.times } : {}) };
    this.failures.push(armed);
    return armed;
  }

  /** An armed failure for this protocol and mailbox, if any (spending one of its uses). */
  takeFailure(protocol: MailProtocol, address: string | undefined): ArmedMailFailure | undefined {
    const index = this.failures.findIndex(
      (f) => (f.protocol === 'any' || f.protocol === protocol) && (!f.mailbox || f.mailbox.toLowerCase() === address?.toLowerCase()),
    );
    if (index < 0) return undefined;
    const failure = this.failures[index]!;
    if (failure.remaining !== undefined && --failure.remaining <= 0) this.failures.splice(index, 1);
    return failure;
  }

  /** Takes one of the mailbox's connection slots for this protocol; false when all are in use. */
  acquireConnection(protocol: MailProtocol, address: string): boolean {
    const key = `${protocol}:${address.toLowerCase()}`;
    const used = this.#connections.get(key) ?? 0;
    if (used >= this.settings.maxConnectionsPerMailbox) return false;
    this.#connections.set(key, used + 1);
    return true;
  }

  releaseConnection(protocol: MailProtocol, address: string): void {
    const key = `${protocol}:${address.toLowerCase()}`;
    const used = (this.#connections.get(key) ?? 1) - 1;
    if (used <= 0) this.#connections.delete(key);
    else this.#connections.set(key, used);
  }

  /** Delivers a message into a mailbox of the tenant (SMTP submission, the admin API). */
  async deliver(address: string, raw: Buffer, folder = 'INBOX'): Promise<boolean> {
    const mailbox = this.findMailbox(address);
    if (!mailbox) return false;
    await (await this.openMailbox(mailbox)).append(folder, raw);
    return true;
  }
}
