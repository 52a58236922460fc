// Exchange Online's POP3 front end (reference section 8.4): implicit TLS (like 995) or plain with
// STLS (like 110), the two-step AUTH XOAUTH2 only, basic logins refused, then the RFC 1939
// transaction commands. Pipelined commands are simply read in order.
import type { Readable } from 'node:stream';
import { DotStuffer, dotStuff } from '../../../net/dot-stuffing.ts';
import { LineTooLongError } from '../../../net/line-reader.ts';
import { startLineServer, type LineSession, type RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';
import { decideAccess } from '../mailbox-access.ts';
import { parseXoauth2 } from '../../../net/sasl-xoauth2.ts';
import { Maildrop } from './maildrop.ts';
import { POP3 } from './replies.ts';

export interface Pop3ServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STLS offered. */
  implicitTls: boolean;
}

export async function startPop3Server(context: ExchangeContext, options: Pop3ServerOptions): Promise<RunningLineServer> {
  return startLineServer(
    {
      host: options.host,
      port: options.port,
      ...(options.implicitTls ? { implicitTls: context.tls } : {}),
      maxLineBytes: context.settings.maxLineBytes,
      idleTimeoutMs: context.settings.idleTimeoutSeconds * 1000,
    },
    (session) => new Pop3Session(context, session).run(),
    (session) => session.write(`${POP3.idle}\r\n`),
  );
}

const TRANSACTION_COMMANDS = new Set(['STAT', 'LIST', 'UIDL', 'RETR', 'TOP', 'DELE', 'RSET', 'NOOP']);
const NUMBER = /^\d{1,9}$/;

class Pop3Session {
  readonly #ctx: ExchangeContext;
  readonly #s: LineSession;
  #maildrop: Maildrop | undefined;
  #notConnected = false;
  #slot: string | undefined;
  #done = false;

  constructor(ctx: ExchangeContext, session: LineSession) {
    this.#ctx = ctx;
    this.#s = session;
  }

  #send(...lines: string[]): Promise<void> {
    return this.#s.write(`${lines.join('\r\n')}\r\n`);
  }

  async run(): Promise<void> {
    try {
      await this.#send(POP3.greeting(this.#ctx.greetingTag));
      while (!this.#done) {
        let raw: Buffer | null;
        try {
          raw = await this.#s.reader.readLine();
        } catch (err) {
          if (!(err instanceof LineTooLongError)) return;
          this.#ctx.identity.count('pop', 'lines');
          await this.#send(POP3.lineTooLong);
          continue;
        }
        if (raw === null) return;
        this.#ctx.identity.count('pop', 'lines');
        await this.#command(raw.toString('latin1'));
      }
    } finally {
      if (this.#slot) this.#ctx.releaseConnection('pop', this.#slot);
    }
  }

  async #command(line: string): Promise<void> {
    const [word = '', ...args] = line.split(' ').filter((p, i) => i === 0 || p !== '');
    const verb = word.toUpperCase();
    if (verb === 'QUIT') return this.#quit();
    if (verb === 'CAPA') return this.#send('+OK', ...(this.#s.secure ? POP3.capaAfterTls : POP3.capaBeforeTls), '.');
    if (!this.#maildrop) {
      if (verb === 'STLS') return this.#stls();
      if (verb === 'USER') return this.#send(args.length === 1 ? '+OK' : POP3.badArguments);
      if (verb === 'PASS') return this.#send(POP3.logonFailure);
      if (verb === 'AUTH') return this.#auth(args);
      return this.#send(TRANSACTION_COMMANDS.has(verb) ? POP3.notInThisState : POP3.unknownCommand);
    }
    if (!TRANSACTION_COMMANDS.has(verb)) {
      return this.#send(['STLS', 'USER', 'PASS', 'AUTH'].includes(verb) ? POP3.notInThisState : POP3.unknownCommand);
    }
    if (this.#notConnected) {
      await this.#send(POP3.notConnected);
      this.#done = true;
      return;
    }
    return this.#transaction(verb, args, this.#maildrop);
  }

  async #stls(): Promise<void> {
    if (this.#s.secure) return this.#send(POP3.notInThisState);
    await this.#send(POP3.stls);
    // Anything the client pipelined after STLS would be read as if it came over TLS: refuse it.
    if (!(await this.#s.startTls(this.#ctx.tls))) this.#done = true;
  }

  async #auth(args: string[]): Promise<void> {
    const mechanism = (args[0] ?? '').toUpperCase();
    if (mechanism === '') return this.#send('+OK', 'PLAIN', 'XOAUTH2', '.');
    if (mechanism !== 'XOAUTH2' && mechanism !== 'PLAIN') return this.#send('-ERR Unrecognized authentication type.');
    if (mechanism === 'XOAUTH2' && args.length > 1) {
      // Exchange wants the two-step form only, and ends the session otherwise.
      await this.#send(POP3.oneLineXoauth2);
      this.#done = true;
      return;
    }
    let response = args[1];
    if (response === undefined) {
      await this.#send('+ ');
      let raw: Buffer | null;
      try {
        raw = await this.#s.reader.readLine();
      } catch {
        return this.#send(POP3.lineTooLong);
      }
      if (raw === null) {
        this.#done = true;
        return;
      }
      response = raw.toString('latin1');
      if (response === '*') return this.#send('-ERR Authentication canceled.');
    }
    if (mechanism === 'PLAIN') return this.#send(POP3.authFailure);
    return this.#login(response);
  }

  async #login(response: string): Promise<void> {
    const ctx = this.#ctx;
    const credentials = parseXoauth2(response);
    if (!credentials) {
      ctx.identity.count('pop', 'auth_failed');
      return this.#send(POP3.authFailure);
    }
    const failure = ctx.takeFailure('pop', credentials.user);
    if (failure?.kind === 'throttled') return this.#send(POP3.throttled(failure.backoffMs));
    if (failure?.kind === 'unavailable') return this.#send(POP3.unavailable);
    const decision = await decideAccess(ctx.identity, 'pop', credentials.user, credentials.token);
    if (decision.kind !== 'ok') {
      ctx.identity.count('pop', 'auth_failed');
      return this.#send(POP3.authFailure);
    }
    if (!ctx.acquireConnection('pop', decision.mailbox.address)) return this.#send(POP3.tooManyConnections);
    this.#slot = decision.mailbox.address;
    this.#notConnected = failure?.kind === 'not-connected';
    this.#maildrop = new Maildrop(await ctx.openMailbox(decision.mailbox));
    ctx.identity.count('pop', 'auth_ok');
    return this.#send(POP3.authSuccess);
  }

  async #transaction(verb: string, args: string[], drop: Maildrop): Promise<void> {
    if (verb === 'NOOP') return this.#send('+OK');
    if (verb === 'RSET') {
      drop.reset();
      return this.#send('+OK');
    }
    if (verb === 'STAT') {
      const { count, octets } = drop.stat();
      return this.#send(`+OK ${count} ${octets}`);
    }
    if ((verb === 'LIST' || verb === 'UIDL') && args.length === 0) {
      const live = drop.live();
      const lines = live.map(([n, m]) => (verb === 'LIST' ? `${n} ${drop.octets(m)}` : `${n} ${drop.uniqueId(m)}`));
      const { count, octets } = drop.stat();
      return this.#send(verb === 'LIST' ? `+OK ${count} messages (${octets} octets)` : '+OK', ...lines, '.');
    }
    const wantsTwo = verb === 'TOP';
    if (args.length !== (wantsTwo ? 2 : 1) || !args.every((a) => NUMBER.test(a))) return this.#send(POP3.badArguments);
    const message = drop.get(Number(args[0]));
    if (message === undefined) return this.#send(POP3.noSuchMessage);
    if (message === 'deleted') return this.#send(POP3.alreadyDeleted);
    switch (verb) {
      case 'LIST':
        return this.#send(`+OK ${args[0]} ${drop.octets(message)}`);
      case 'UIDL':
        return this.#send(`+OK ${args[0]} ${drop.uniqueId(message)}`);
      case 'DELE':
        drop.delete(message);
        return this.#send('+OK');
      case 'RETR':
        if (drop.isLarge(message)) return this.#streamMessage(drop.stream(message));
        return this.#s.write(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(await drop.read(message))]));
      default:
        return this.#s.write(Buffer.concat([Buffer.from('+OK\r\n'), dotStuff(topOf(await drop.read(message), Number(args[1])))]));
    }
  }

  /** RETR of a large message: read, framed and written chunk by chunk, waiting for the client. */
  async #streamMessage(source: Readable): Promise<void> {
    await this.#s.write('+OK\r\n');
    for await (const chunk of source.pipe(new DotStuffer())) await this.#s.write(chunk as Buffer);
  }

  async #quit(): Promise<void> {
    this.#done = true;
    await this.#maildrop?.commit();
    await this.#send(POP3.quit);
  }
}

/** The header and the first `lines` lines of the body (TOP). */
function topOf(raw: Buffer, lines: number): Buffer {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) return raw;
  let end = split + 4;
  for (let i = 0; i < lines && end < raw.length; i++) {
    const lf = raw.indexOf(10, end);
    end = lf < 0 ? raw.length : lf + 1;
  }
  return raw.subarray(0, end);
}
