// IMAP upstream login (reference section 8.3): greeting, STARTTLS when the endpoint wants it,
// CAPABILITY when not yet known, AUTHENTICATE XOAUTH2 (in one line with SASL-IR, else after the
// "+"), and Dovecot's error challenge ("+ <base64 JSON>", answered with an empty line) before its
// tagged NO. Our tags are "mb1", "mb2"...: the client's tags only start after the handover.
import { decodeChallenge, redact } from '../../pop3/sasl.ts';
import { ImapResponseReader } from '../../net/imap-reader.ts';
import { UpstreamError, greetingHint, serverWords, upstreamFailure } from './errors.ts';
import type { LoginContext, LoginResult } from './index.ts';

/** Untagged lines accepted before a tagged answer: a login needs a handful. */
const MAX_UNTAGGED = 1000;

interface Tagged {
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line without our tag, e.g. "OK AUTHENTICATE completed." (redacted, whole). */
  text: string;
  /** The same, made short and printable for messages. */
  words: string;
  /** Untagged lines (redacted, whole). */
  untagged: string[];
}

/** The capability list of a `* CAPABILITY ...` line or an `[CAPABILITY ...]` response code. */
function capabilitiesIn(line: string): string[] | undefined {
  const match = /^\* CAPABILITY\s+(.*)$/i.exec(line) ?? /^(?:\* )?(?:OK|PREAUTH)\s+\[CAPABILITY\s+([^\]]*)\]/i.exec(line);
  return match
    ? match[1]!
        .trim()
        .split(/\s+/)
        .filter((c) => c !== '')
    : undefined;
}

function has(caps: string[], name: string): boolean {
  return caps.some((c) => c.toUpperCase() === name);
}

/** The proxy's IMAP login conversation: our tags, redacted answers, every response read through the bounded reader. */
class UpstreamImapSession {
  readonly ctx: LoginContext;
  readonly #reader: ImapResponseReader;
  #n = 0;
  /** The last `* BYE`, which explains a close. */
  bye: string | undefined;

  constructor(ctx: LoginContext) {
    this.ctx = ctx;
    this.#reader = new ImapResponseReader(ctx.conn);
  }

  nextTag(): string {
    return `mb${++this.#n}`;
  }

  send(line: string): void {
    this.ctx.conn.send(line);
  }

  /** One response line, literals folded in, redacted; network failures become UpstreamErrors. */
  async response(waiting: string): Promise<string> {
    const { where, secrets } = this.ctx;
    try {
      const line = await this.#reader.response();
      if (/^\* BYE\b/i.test(line)) this.bye = serverWords(line, secrets);
      return line;
    } catch (err) {
      throw upstreamFailure(err, where, waiting, this.bye);
    }
  }

  /**
   * Reads to the tagged answer of `tag`. `onContinue` answers a "+" line (returning the line to
   * send); without one, a "+" is a protocol error.
   */
  async tagged(tag: string, waiting: string, onContinue?: (line: string) => string): Promise<Tagged> {
    const { where, secrets } = this.ctx;
    const untagged: string[] = [];
    for (;;) {
      const line = await this.response(waiting);
      if (line.startsWith(`${tag} `)) {
        const text = redact(line.slice(tag.length + 1), secrets);
        const words = serverWords(text, secrets);
        const status = text.split(' ')[0]!.toUpperCase();
        if (status !== 'OK' && status !== 'NO' && status !== 'BAD')
          throw new UpstreamError('protocol', `${where}: the answer to ${waiting} is not OK, NO or BAD: ${words}`, { reply: words });
        return { status, text, words, untagged };
      }
      if (/^\+( |$)/.test(line)) {
        if (!onContinue)
          throw new UpstreamError('protocol', `${where}: an unexpected "+" continuation in answer to ${waiting}: ${serverWords(line, secrets)}`, {
            reply: serverWords(line, secrets),
          });
        this.send(onContinue(line));
        continue;
      }
      if (!line.startsWith('* '))
        throw new UpstreamError('protocol', `${where}: neither a tagged, an untagged nor a "+" response to ${waiting}: ${serverWords(line, secrets)}`, {
          reply: serverWords(line, secrets),
        });
      if (untagged.length >= MAX_UNTAGGED) throw new UpstreamError('protocol', `${where}: more than ${MAX_UNTAGGED} untagged responses to ${waiting}`);
      untagged.push(redact(line, secrets));
    }
  }

  async command(text: string, onContinue?: (line: string) => string): Promise<Tagged> {
    const tag = this.nextTag();
    this.send(`${tag} ${text}`);
    return this.tagged(tag, `the reply to ${text.split(' ')[0]}`, onContinue);
  }

  async capabilities(): Promise<string[]> {
    const reply = await this.command('CAPABILITY');
    const found = reply.untagged.map(capabilitiesIn).find((c) => c !== undefined) ?? capabilitiesIn(reply.text);
    if (reply.status !== 'OK' || !found)
      throw new UpstreamError('protocol', `${this.ctx.where}: CAPABILITY gave no capability list: ${reply.words}`, { reply: reply.words });
    return found;
  }
}

export async function imapLogin(ctx: LoginContext): Promise<LoginResult> {
  const { conn, target, where, secrets, user } = ctx;
  const imap = new UpstreamImapSession(ctx);

  const greetingLine = await imap.response('the greeting').catch((err: unknown) => {
    throw greetingHint(err, target.endpoint.security);
  });
  const greeting = redact(greetingLine, secrets);
  const words = serverWords(greeting, secrets);
  if (/^\* BYE\b/i.test(greetingLine)) throw new UpstreamError('closed', `${where}: refused the connection: ${words}`, { reply: words });
  if (/^\* PREAUTH\b/i.test(greetingLine))
    throw new UpstreamError('protocol', `${where}: greets as already authenticated (PREAUTH), so there is no login to make: ${words}`, { reply: words });
  if (!/^\* OK\b/i.test(greetingLine)) throw new UpstreamError('protocol', `${where}: not an IMAP greeting: ${words}`, { reply: words });
  let caps = capabilitiesIn(greetingLine) ?? [];

  if (target.endpoint.security === 'starttls') {
    if (caps.length === 0) caps = await imap.capabilities();
    if (!has(caps, 'STARTTLS')) throw new UpstreamError('tls', `${where}: does not offer STARTTLS (capabilities: ${caps.join(' ')})`);
    const started = await imap.command('STARTTLS');
    if (started.status !== 'OK') throw new UpstreamError('tls', `${where}: refused STARTTLS: ${started.words}`, { reply: started.words });
    try {
      await conn.upgrade(target.endpoint.host, target.caPem);
    } catch (err) {
      throw upstreamFailure(err, where, 'the TLS handshake after STARTTLS');
    }
    // What was said before TLS is not to be trusted (RFC 3501 section 6.2.1).
    caps = await imap.capabilities();
  } else if (caps.length === 0) {
    caps = await imap.capabilities();
  }
  if (!has(caps, 'AUTH=XOAUTH2')) throw new UpstreamError('protocol', `${where}: does not offer AUTH=XOAUTH2 (capabilities: ${caps.join(' ')})`);

  const response = secrets[1]!;
  const tag = imap.nextTag();
  let credentialsSent = false;
  let challenge: string | undefined;
  if (has(caps, 'SASL-IR')) {
    imap.send(`${tag} AUTHENTICATE XOAUTH2 ${response}`);
    credentialsSent = true;
  } else {
    imap.send(`${tag} AUTHENTICATE XOAUTH2`);
  }
  const auth = await imap.tagged(tag, 'the answer to AUTHENTICATE XOAUTH2', (line) => {
    if (!credentialsSent) {
      credentialsSent = true;
      return response;
    }
    if (challenge === undefined) {
      // An error challenge (Dovecot, Gmail): an empty line ends the exchange; the NO follows.
      challenge = serverWords(decodeChallenge(line.slice(1)), secrets);
      return '';
    }
    throw new UpstreamError('protocol', `${where}: a second "+" challenge during AUTHENTICATE XOAUTH2: ${serverWords(line, secrets)}`, {
      reply: serverWords(line, secrets),
    });
  });
  if (auth.status !== 'OK') {
    const detail = challenge !== undefined && challenge !== '' ? ` (error challenge: ${challenge})` : '';
    if (!credentialsSent)
      throw new UpstreamError('protocol', `${where}: refused AUTHENTICATE XOAUTH2 before any credentials: ${auth.words}`, { reply: auth.words });
    throw new UpstreamError('auth_rejected', `${where}: refused the XOAUTH2 login for ${user}: ${auth.words}${detail}`, { reply: auth.words });
  }
  const stated = capabilitiesIn(auth.text) ?? auth.untagged.map(capabilitiesIn).find((c) => c !== undefined);
  const after = await checkMailboxOpens(imap, stated);
  return { greeting, capabilities: after, loginReply: auth.text };
}

/**
 * Exchange accepts the token of a mailbox it then cannot open (IMAP disabled, no mailbox
 * permission, no licence) and says so only to the next mailbox command ("BAD User is authenticated
 * but not connected."), CAPABILITY and NOOP being answered in that state too. So after the login
 * one round trip asks, pipelined, for the capabilities (when the login did not state them) and
 * `LIST "" ""` (the hierarchy delimiter: no folder opened, nothing changed), and a refusal of the
 * LIST is the login's failure. Returns the capabilities after login ([] when none were stated).
 */
async function checkMailboxOpens(imap: UpstreamImapSession, stated: string[] | undefined): Promise<string[]> {
  const { where, user } = imap.ctx;
  const capTag = stated ? undefined : imap.nextTag();
  const listTag = imap.nextTag();
  imap.send(`${capTag ? `${capTag} CAPABILITY\r\n` : ''}${listTag} LIST "" ""`);
  let caps = stated ?? [];
  if (capTag) {
    const reply = await imap.tagged(capTag, 'the reply to CAPABILITY');
    caps = reply.untagged.map(capabilitiesIn).find((c) => c !== undefined) ?? capabilitiesIn(reply.text) ?? [];
  }
  const list = await imap.tagged(listTag, 'the reply to LIST').catch((err: unknown) => {
    // Exchange closes the connection right after its BAD; the BYE or the close says the same.
    if (err instanceof UpstreamError && err.code === 'closed' && imap.bye !== undefined) {
      throw new UpstreamError('not_connected', `${where}: accepted the token for ${user} but cannot open the mailbox: ${imap.bye}`, { reply: imap.bye });
    }
    throw err;
  });
  if (list.status !== 'OK') {
    throw new UpstreamError('not_connected', `${where}: accepted the token for ${user} but cannot open the mailbox: ${list.words}`, { reply: list.words });
  }
  return caps;
}
