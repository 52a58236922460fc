// One SMTP submission session, as Exchange Online runs it (reference 8.5): greeting, EHLO,
// STARTTLS, AUTH XOAUTH2 (AUTH LOGIN refused: basic authentication is off), then MAIL, RCPT and
// DATA or BDAT. Commands are read and answered strictly in order, which is all PIPELINING needs.
// Every read is bounded (line length, message size); every error is a reply, never a crash; a
// connection that keeps making errors is closed.
import tls from 'node:tls';
import { LineTooLongError } from '../../../net/line-reader.ts';
import type { LineSession } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';
import { decideAccess, type AccessDecision } from '../mailbox-access.ts';
import { parseXoauth2 } from '../../../net/sasl-xoauth2.ts';
import { parseBdat, parseCommandLine, parseHelloDomain, parseMailFrom, parseRcptTo, type MailFrom, type PathError } from './command.ts';
import { sendAsRefusal, submitMessage, type Submitter } from './delivery.ts';
import { rfc5322Date, type SmtpNames } from './names.ts';
import { SMTP, withTail, type DiagnosticTail } from './replies.ts';

export interface SmtpLimits {
  /** Longest command (and message) line, without CRLF. */
  maxLineBytes: number;
  /** Largest message (advertised as SIZE). */
  maxMessageBytes: number;
  idleTimeoutMs: number;
  /** Errors (bad commands, failed logins) a connection may make; the next one closes it. */
  maxProtocolErrors: number;
  /** Recipients of one message (Exchange Online: 500). */
  maxRecipients: number;
}

interface Transaction {
  from: string;
  smtputf8: boolean;
  body: MailFrom['body'];
  recipients: string[];
  /** BDAT chunks received so far. */
  chunks?: MessageBuffer;
}

interface Authenticated extends Submitter {
  /** Holds one of the mailbox's connection slots. */
  slot: boolean;
}

const CRLF = Buffer.from('\r\n');
const TOO_LONG = Symbol('line too long');
const CHUNK = 64 * 1024;

/** A message being received: copies of what arrives, up to a bound; past it only counts bytes. */
class MessageBuffer {
  readonly #max: number;
  #parts: Buffer[] = [];
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  size = 0;
  overflow = false;

  constructor(max: number) {
    this.#max = max;
  }

  add(bytes: Buffer): void {
    this.size += bytes.length;
    if (this.overflow) return;
    if (this.size > this.#max) {
      this.overflow = true;
      this.#parts = [];
      this.#pending = [];
      return;
    }
    this.#pending.push(Buffer.from(bytes));
    this.#pendingBytes += bytes.length;
    if (this.#pendingBytes >= CHUNK) this.#settle();
  }

  #settle(): void {
    this.#parts.push(Buffer.concat(this.#pending));
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  result(): Buffer {
    this.#settle();
    return Buffer.concat(this.#parts);
  }
}

function refusalReply(decision: Exclude<AccessDecision, { kind: 'ok' }>): string {
  switch (decision.reason) {
    case 'smtp_auth_disabled_tenant':
      return SMTP.smtpAuthDisabledTenant;
    case 'smtp_auth_disabled_mailbox':
      return SMTP.smtpAuthDisabledMailbox;
    case 'security_defaults':
      return SMTP.securityDefaults;
    default:
      return SMTP.authFailed;
  }
}

function pathErrorReply(error: PathError, side: 'sender' | 'recipient'): string {
  switch (error) {
    case 'address':
      return side === 'sender' ? SMTP.invalidSender : SMTP.invalidRecipient;
    case 'utf8':
      return side === 'sender' ? SMTP.utf8Sender : SMTP.utf8Recipient;
    case 'parameter':
      return SMTP.unrecognizedParameter;
    case 'body':
      return SMTP.unsupportedBody;
    default:
      return SMTP.invalidArguments;
  }
}

export class SmtpSession {
  /** The id in the greeting and in every diagnostic tail of this connection. */
  readonly id: string;
  readonly #ctx: ExchangeContext;
  readonly #s: LineSession;
  readonly #names: SmtpNames;
  readonly #limits: SmtpLimits;
  #helo: string | undefined;
  #auth: Authenticated | undefined;
  #tx: Transaction | undefined;
  #errors = 0;
  #done = false;

  constructor(ctx: ExchangeContext, session: LineSession, names: SmtpNames, limits: SmtpLimits) {
    this.#ctx = ctx;
    this.#s = session;
    this.#names = names;
    this.#limits = limits;
    this.id = names.sessionId();
  }

  get #clientIp(): string {
    const address = this.#s.remoteAddress;
    return address.startsWith('::ffff:') ? address.slice(7) : address;
  }

  #now(): Date {
    return new Date(this.#ctx.identity.clock.nowMs());
  }

  #tail(): DiagnosticTail {
    return { host: this.#names.diagnosticHost, sessionId: this.id, now: this.#now() };
  }

  /** What the server says when the connection has been idle too long. */
  idleReply(): string {
    return `${withTail(SMTP.idle, this.#tail())}\r\n`;
  }

  #send(...lines: string[]): Promise<void> {
    return this.#s.write(`${lines.join('\r\n')}\r\n`);
  }

  /** An error reply; `counts` errors bring the connection nearer to being closed. */
  #fail(text: string, counts = true): Promise<void> {
    if (counts && ++this.#errors > this.#limits.maxProtocolErrors) return this.#close(SMTP.tooManyErrors);
    return this.#send(withTail(text, this.#tail()));
  }

  /** A final 421: said, then the connection ends. */
  #close(text: string): Promise<void> {
    this.#done = true;
    return this.#send(withTail(text, this.#tail()));
  }

  async #readLine(): Promise<Buffer | null | typeof TOO_LONG> {
    try {
      return await this.#s.reader.readLine();
    } catch (err) {
      if (err instanceof LineTooLongError) return TOO_LONG;
      return null;
    }
  }

  async run(): Promise<void> {
    try {
      await this.#send(SMTP.greeting(this.#names.frontendHost, rfc5322Date(this.#now()), this.id));
      while (!this.#done) {
        const line = await this.#readLine();
        if (line === null) return;
        if (line === TOO_LONG) await this.#fail(SMTP.commandTooLong);
        else await this.#command(line);
      }
    } finally {
      if (this.#auth?.slot) this.#ctx.releaseConnection('smtp', this.#auth.mailbox.address);
    }
  }

  async #command(raw: Buffer): Promise<void> {
    const command = parseCommandLine(raw);
    switch (command.verb) {
      case 'EHLO':
      case 'HELO':
        return this.#hello(command.verb, command.args);
      case 'STARTTLS':
        return this.#startTls(command.args);
      case 'AUTH':
        return this.#authenticate(command.args);
      case 'MAIL':
        return this.#mail(command.args);
      case 'RCPT':
        return this.#rcpt(command.args);
      case 'DATA':
        return this.#data(command.args);
      case 'BDAT':
        return this.#bdat(command.args);
      case 'RSET':
        this.#tx = undefined;
        return this.#send(SMTP.reset);
      case 'NOOP':
        return this.#send(SMTP.noop);
      case 'VRFY':
        return this.#send(SMTP.vrfy);
      case 'EXPN':
        return this.#fail(SMTP.notImplemented);
      case 'HELP':
        return this.#send(...SMTP.help);
      case 'QUIT':
        this.#done = true;
        return this.#send(SMTP.quit);
      default:
        return this.#fail(SMTP.unrecognized(command.quotable ?? 'unknown'));
    }
  }

  async #hello(verb: 'EHLO' | 'HELO', args: string): Promise<void> {
    const parsed = parseHelloDomain(args);
    if (!parsed.ok) {
      if (parsed.reason === 'invalid') return this.#fail(SMTP.invalidDomain);
      return this.#fail(verb === 'EHLO' ? SMTP.ehloDomainRequired : SMTP.heloDomainRequired);
    }
    this.#helo = parsed.domain;
    this.#tx = undefined;
    if (verb === 'HELO') return this.#send(SMTP.helo(this.#names.frontendHost, this.#clientIp));
    return this.#send(
      ...SMTP.ehlo({ host: this.#names.frontendHost, clientIp: this.#clientIp, maxMessageBytes: this.#limits.maxMessageBytes, secure: this.#s.secure }),
    );
  }

  async #startTls(args: string): Promise<void> {
    if (this.#s.secure) return this.#fail(SMTP.onlyOneStartTls);
    if (args !== '') return this.#fail(SMTP.invalidArguments);
    await this.#send(SMTP.startTls);
    // Bytes pipelined after STARTTLS would be read as if they came over TLS (CVE-2011-0411): end.
    if (!(await this.#s.startTls(this.#ctx.tls))) {
      this.#done = true;
      return;
    }
    // RFC 3207: the client starts over with EHLO.
    this.#helo = undefined;
    this.#tx = undefined;
  }

  async #authenticate(args: string): Promise<void> {
    // Before STARTTLS Exchange offers no AUTH and recognises no mechanism (reference 8.5).
    if (!this.#s.secure) return this.#fail(SMTP.authUnrecognized);
    if (this.#helo === undefined) return this.#fail(SMTP.needHello);
    if (this.#auth) return this.#fail(SMTP.authAlready);
    if (this.#tx) return this.#fail(SMTP.badSequence);
    const words = args.split(' ').filter((w) => w !== '');
    if (words.length === 0 || words.length > 2) return this.#fail(SMTP.invalidArguments);
    const mechanism = words[0]!.toUpperCase();
    if (mechanism === 'XOAUTH2') return this.#xoauth2(words[1]);
    if (mechanism === 'LOGIN') return this.#basicLogin(words[1]);
    return this.#fail(SMTP.authUnrecognized);
  }

  /** The client's answer to a 334 challenge; undefined when the session ended or the answer was refused. */
  async #saslResponse(challenge: string): Promise<string | undefined> {
    await this.#send(challenge);
    const line = await this.#readLine();
    if (line === null) {
      this.#done = true;
      return undefined;
    }
    if (line === TOO_LONG) {
      await this.#fail(SMTP.commandTooLong);
      return undefined;
    }
    const response = line.toString('latin1').trim();
    if (response === '*') {
      await this.#fail(SMTP.authCancelled);
      return undefined;
    }
    return response;
  }

  async #xoauth2(initial: string | undefined): Promise<void> {
    const ctx = this.#ctx;
    const response = initial ?? (await this.#saslResponse(SMTP.authContinue));
    if (response === undefined) return;
    const credentials = parseXoauth2(response === '=' ? '' : response);
    if (!credentials) {
      ctx.identity.count('smtp', 'auth_failed');
      return this.#fail(SMTP.authFailed);
    }
    const failure = ctx.takeFailure('smtp', credentials.user);
    if (failure?.kind === 'throttled') return this.#close(SMTP.throttled);
    if (failure?.kind === 'unavailable') return this.#close(SMTP.unavailable);
    const decision = await decideAccess(ctx.identity, 'smtp', credentials.user, credentials.token);
    // An armed `not-connected` is IMAP's "authenticated but not connected"; SMTP refuses instead.
    if (decision.kind !== 'ok' || failure?.kind === 'not-connected') {
      ctx.identity.count('smtp', 'auth_failed');
      return this.#fail(decision.kind === 'ok' ? SMTP.authFailed : refusalReply(decision));
    }
    const principal = decision.principal.toLowerCase();
    const appOnly = ctx.identity.scenario.exchange.servicePrincipals.some((sp) => sp.objectId.toLowerCase() === principal);
    const slot = ctx.acquireConnection('smtp', decision.mailbox.address);
    this.#auth = { mailbox: decision.mailbox, principal: decision.principal, appOnly, slot };
    ctx.identity.count('smtp', 'auth_ok');
    return this.#send(SMTP.authOk);
  }

  /** AUTH LOGIN: the username/password dance, then the basic-authentication refusal. */
  async #basicLogin(initial: string | undefined): Promise<void> {
    if (initial === undefined && (await this.#saslResponse(SMTP.authUsername)) === undefined) return;
    if ((await this.#saslResponse(SMTP.authPassword)) === undefined) return;
    this.#ctx.identity.count('smtp', 'auth_failed');
    return this.#fail(SMTP.basicAuthDisabled);
  }

  async #mail(args: string): Promise<void> {
    if (this.#helo === undefined) return this.#fail(SMTP.needHello);
    if (!this.#auth) return this.#fail(SMTP.notAuthenticated);
    if (this.#tx) return this.#fail(SMTP.senderAlready);
    const parsed = parseMailFrom(args);
    if (!parsed.ok) return this.#fail(pathErrorReply(parsed.error, 'sender'));
    const mail = parsed.value;
    if (mail.size !== undefined && mail.size > this.#limits.maxMessageBytes) return this.#fail(SMTP.tooLarge, false);
    this.#tx = { from: mail.address, smtputf8: mail.smtputf8, body: mail.body, recipients: [] };
    return this.#send(SMTP.mailOk);
  }

  async #rcpt(args: string): Promise<void> {
    const tx = this.#tx;
    if (!tx) return this.#fail(SMTP.needMail);
    if (tx.chunks) return this.#fail(SMTP.badSequence);
    const parsed = parseRcptTo(args, tx.smtputf8);
    if (!parsed.ok) return this.#fail(pathErrorReply(parsed.error, 'recipient'));
    if (tx.recipients.length >= this.#limits.maxRecipients) return this.#fail(SMTP.tooManyRecipients, false);
    tx.recipients.push(parsed.value.address);
    return this.#send(SMTP.rcptOk);
  }

  async #data(args: string): Promise<void> {
    const tx = this.#tx;
    if (!tx) return this.#fail(SMTP.needMail);
    if (tx.recipients.length === 0) return this.#fail(SMTP.needRcpt);
    if (args !== '') return this.#fail(SMTP.invalidArguments);
    if (tx.body === 'BINARYMIME' || tx.chunks) return this.#fail(SMTP.badSequence);
    await this.#send(SMTP.dataStart);
    const message = new MessageBuffer(this.#limits.maxMessageBytes);
    let lineTooLong = false;
    for (;;) {
      const line = await this.#readLine();
      if (line === null) {
        this.#done = true;
        this.#tx = undefined;
        return;
      }
      if (line === TOO_LONG) {
        lineTooLong = true;
        continue;
      }
      if (line.length === 1 && line[0] === 0x2e) break;
      // Dot-unstuffing (RFC 5321 section 4.5.2).
      message.add(line.length > 0 && line[0] === 0x2e ? line.subarray(1) : line);
      message.add(CRLF);
    }
    this.#tx = undefined;
    if (message.overflow) return this.#fail(SMTP.tooLarge, false);
    if (lineTooLong) return this.#fail(SMTP.invalidContent, false);
    return this.#submit(tx, message.result());
  }

  async #bdat(args: string): Promise<void> {
    const parsed = parseBdat(args);
    if (!parsed) return this.#fail(SMTP.invalidArguments);
    const tx = this.#tx;
    const usable = tx !== undefined && tx.recipients.length > 0;
    if (usable && !tx.chunks) tx.chunks = new MessageBuffer(this.#limits.maxMessageBytes);
    // The chunk is read whatever the reply will be (RFC 3030), a bounded piece at a time.
    let remaining = parsed.size;
    while (remaining > 0) {
      let piece: Buffer | null;
      try {
        piece = await this.#s.reader.readBytes(Math.min(remaining, CHUNK));
      } catch {
        piece = null;
      }
      if (piece === null) {
        this.#done = true;
        this.#tx = undefined;
        return;
      }
      remaining -= piece.length;
      if (usable) tx.chunks!.add(piece);
    }
    if (!tx) return this.#fail(SMTP.needMail);
    if (!usable) return this.#fail(SMTP.needRcpt);
    if (!parsed.last) return this.#send(SMTP.chunkReceived(parsed.size));
    this.#tx = undefined;
    const chunks = tx.chunks!;
    if (chunks.overflow) return this.#fail(SMTP.tooLarge, false);
    return this.#submit(tx, chunks.result());
  }

  async #submit(tx: Transaction, raw: Buffer): Promise<void> {
    const ctx = this.#ctx;
    const auth = this.#auth!;
    const mailboxHost = this.#names.mailboxHost;
    const refusedSender = sendAsRefusal(ctx, auth, tx.from, raw);
    if (refusedSender) return this.#send(SMTP.sendAsDenied(auth.mailbox.address, refusedSender, mailboxHost));
    if (!auth.slot) {
      auth.slot = ctx.acquireConnection('smtp', auth.mailbox.address);
      if (!auth.slot) return this.#send(SMTP.concurrentLimit(mailboxHost));
    }
    const socket = this.#s.socket;
    const secure = socket instanceof tls.TLSSocket ? socket : undefined;
    try {
      const submitted = await submitMessage(
        ctx,
        this.#names,
        auth,
        tx.recipients,
        raw,
        {
          helo: this.#helo ?? this.#clientIp,
          clientIp: this.#clientIp,
          tlsVersion: secure?.getProtocol() ?? undefined,
          cipher: secure?.getCipher()?.standardName,
        },
        this.#now(),
      );
      return this.#send(SMTP.queued(submitted.messageId, mailboxHost));
    } catch {
      return this.#fail(SMTP.submitFailed, false);
    }
  }
}
