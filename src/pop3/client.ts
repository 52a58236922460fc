// mailbridge's POP3 client: RFC 1939 with CAPA (RFC 2449), STLS (RFC 2595), SASL AUTH (RFC 5034)
// with XOAUTH2 and OAUTHBEARER (RFC 7628) in the two-step form Exchange Online requires, messages
// streamed (never held whole), and pipelined RETRs when the server offers PIPELINING.
//
// Operations run one at a time in call order; each waits for the previous one (a retr() stream
// holds the connection until it is read to the end or destroyed). An -ERR answer rejects with a
// Pop3Error 'server' (or 'auth_rejected' for a login) and leaves the connection usable; anything else that
// goes wrong (timeout, close, broken reply, long line) closes it and rejects every later call.
import type net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { openSocket, settingsOf, upgradeSocket, type Pop3ConnectOptions, type Pop3Settings } from './connect.ts';
import { Pop3Error, quote } from './errors.ts';
import { blockLines, lineText, parseCapabilities, parseListLine, parseStat, parseUidlLine, statusOf, type Pop3Capabilities } from './replies.ts';
import { bearerResponse, decodeChallenge, errorChallengeAnswer, redact, type BearerMechanism } from './sasl.ts';
import { Pop3Wire, type BlockSink } from './wire.ts';

/** Content buffered in a message stream before the connection stops reading. */
const STREAM_HIGH_WATER_MARK = 256 * 1024;

const NO_CAPABILITIES: Pop3Capabilities = { raw: [], sasl: [], pipelining: false, top: false, uidl: false, stls: false, user: false };

function messageNumber(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`POP3 message number must be a positive integer, not ${String(n)}`);
  return n;
}

export class Pop3Client {
  readonly #settings: Pop3Settings;
  #wire: Pop3Wire;
  #greeting = '';
  #tlsProtocol: string | undefined;
  #peerCertificate: PeerCertificate | undefined;
  #caps: Pop3Capabilities | undefined;
  /** The last queued operation; the next one starts when it has settled. */
  #tail: Promise<unknown> = Promise.resolve();
  /** Operations queued or running (detach() needs none). */
  #pending = 0;
  #detached = false;

  private constructor(wire: Pop3Wire, settings: Pop3Settings) {
    this.#wire = wire;
    this.#settings = settings;
    this.#noteTls();
  }

  /**
   * Connects and reads the greeting. With security 'starttls' it also sends CAPA and STLS and
   * upgrades to TLS before returning (failing with 'tls' when the server does not offer STLS).
   */
  static async connect(options: Pop3ConnectOptions): Promise<Pop3Client> {
    const settings = settingsOf(options);
    const client = new Pop3Client(new Pop3Wire(await openSocket(settings), settings), settings);
    try {
      await client.#exclusive(async () => {
        const line = await client.#wire.readLine('greeting');
        const text = lineText(line);
        const status = statusOf(line);
        if (status === 'err')
          throw new Pop3Error('server', `the POP3 server at ${settings.host}:${settings.port} refused the connection: ${text}`, { reply: text });
        if (status !== 'ok')
          throw client.#wire.fail(
            new Pop3Error('protocol', `the greeting of ${settings.host}:${settings.port} is not a POP3 greeting: ${quote(text)}`, { reply: text }),
          );
        client.#greeting = text;
      });
      if (settings.security === 'starttls') await client.#startTls();
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** The server's greeting line, e.g. "+OK The Microsoft Exchange POP3 service is ready. [...]". */
  get greeting(): string {
    return this.#greeting;
  }

  /** Whether the connection is TLS (implicit, or after STLS). */
  get secure(): boolean {
    return this.#tlsProtocol !== undefined;
  }

  /** The negotiated TLS version, e.g. "TLSv1.3". */
  get tlsProtocol(): string | undefined {
    return this.#tlsProtocol;
  }

  /** The server's certificate (already verified against the trusted CAs and the name). */
  get peerCertificate(): PeerCertificate | undefined {
    return this.#peerCertificate;
  }

  /** CAPA (RFC 2449); cached until STLS or a login. A server without CAPA gives empty capabilities. */
  capabilities(): Promise<Pop3Capabilities> {
    return this.#exclusive(() => this.#capa());
  }

  /** Two-step SASL XOAUTH2; resolves with the +OK line. A refusal rejects with code 'auth_rejected'. */
  authXoauth2(user: string, token: string): Promise<string> {
    return this.#exclusive(() => this.#bearer('XOAUTH2', user, token));
  }

  /** Two-step SASL OAUTHBEARER (RFC 7628); not offered by Exchange Online. */
  authOauthbearer(user: string, token: string): Promise<string> {
    return this.#exclusive(() => this.#bearer('OAUTHBEARER', user, token));
  }

  stat(): Promise<{ count: number; octets: number }> {
    return this.#exclusive(async () => {
      const line = await this.#command('STAT');
      const stat = parseStat(line);
      if (!stat) throw this.#protocol(`the POP3 server's reply to STAT is not "+OK <count> <octets>": ${quote(line)}`, line);
      return stat;
    });
  }

  /** LIST: every message not deleted, with its size in octets. */
  list(): Promise<{ n: number; size: number }[]> {
    return this.#exclusive(async () => {
      await this.#command('LIST');
      return this.#parseLines('LIST', await this.#collect('the LIST listing'), parseListLine);
    });
  }

  /** UIDL: every message not deleted, with its unique id. */
  uidl(): Promise<{ n: number; uid: string }[]> {
    return this.#exclusive(async () => {
      await this.#command('UIDL');
      return this.#parseLines('UIDL', await this.#collect('the UIDL listing'), parseUidlLine);
    });
  }

  /** TOP: the header and the first `lines` lines of the body, dot-unstuffed, CRLFs kept. */
  async top(n: number, lines: number): Promise<Buffer> {
    messageNumber(n);
    if (!Number.isSafeInteger(lines) || lines < 0) throw new RangeError(`POP3 TOP line count must be a non-negative integer, not ${String(lines)}`);
    return this.#exclusive(async () => {
      await this.#command(`TOP ${n} ${lines}`);
      return this.#collect(`the TOP ${n} reply`);
    });
  }

  /**
   * RETR: the message as a stream (dot-unstuffed, CRLFs kept), read from the connection as it is
   * consumed. Errors (an -ERR, a close mid-message) destroy the stream with a Pop3Error, which
   * pipeline() and for await report (an error nobody listens for does not crash the process). The
   * connection is busy until the stream has been read to its end or destroyed (the rest of the
   * message is then read and dropped).
   */
  retr(n: number): Readable {
    messageNumber(n);
    const { stream, sink } = this.#messageStream();
    this.#exclusive(async () => {
      if (stream.destroyed) return; // given up before it was asked for
      await this.#command(`RETR ${n}`);
      await this.#readMessage(n, stream, sink);
    }).catch((err: unknown) => stream.destroy(err as Error));
    return stream;
  }

  /**
   * RETR for each of `ns`, in order: pipelined (up to `pipelineWindow` commands ahead) when the
   * server offers PIPELINING, one at a time otherwise. `onMessage` gets each message as a stream
   * and must read it before its promise settles; what it leaves unread is dropped. Rejects with
   * the first error (an -ERR for one message stops the rest) after reading the replies already
   * asked for, so the connection stays usable after an -ERR or an `onMessage` failure.
   */
  async retrMany(ns: number[], onMessage: (n: number, message: Readable) => Promise<void>): Promise<void> {
    for (const n of ns) messageNumber(n);
    return this.#exclusive(async () => {
      if (ns.length === 0) return;
      const caps = this.#caps ?? (await this.#capa());
      const window = caps.pipelining ? this.#settings.pipelineWindow : 1;
      let sent = 0;
      let done = 0;
      try {
        for (; done < ns.length; done++) {
          let batch = '';
          while (sent < ns.length && sent - done < window) batch += `RETR ${ns[sent++]}\r\n`;
          if (batch !== '') this.#wire.write(batch);
          const n = ns[done]!;
          await this.#reply(`RETR ${n}`);
          await this.#deliver(n, onMessage);
        }
      } catch (err) {
        if (!this.#wire.failure) await this.#skipReplies(sent - done - 1).catch(() => {});
        throw err;
      }
    });
  }

  async dele(n: number): Promise<void> {
    messageNumber(n);
    return this.#exclusive(async () => {
      await this.#command(`DELE ${n}`);
    });
  }

  /** RSET: unmarks the messages marked deleted in this session. */
  rset(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#command('RSET');
    });
  }

  noop(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#command('NOOP');
    });
  }

  /** QUIT: the server removes the messages marked deleted, then the connection closes. */
  quit(): Promise<void> {
    return this.#exclusive(async () => {
      try {
        await this.#command('QUIT');
      } finally {
        this.#wire.end();
      }
    });
  }

  /** Closes the connection at once (no QUIT: deletions are not applied). Pending calls reject. */
  close(): void {
    if (this.#detached) return; // the socket belongs to whoever took it
    this.#wire.fail(new Pop3Error('closed', 'the POP3 connection was closed by the client'));
    this.#wire.socket.destroy();
  }

  /**
   * Hands the connection over (a proxy relays raw bytes from here on): the socket comes back
   * paused with no data listener, with the bytes already received but not yet read. Only when no
   * operation is pending; the client is unusable afterwards and close() leaves the socket alone.
   */
  detach(): { socket: net.Socket | tls.TLSSocket; leftover: Buffer } {
    const failure = this.#wire.failure;
    if (this.#detached || failure) throw new Pop3Error('closed', `the POP3 connection cannot be handed over: ${failure?.message ?? 'already handed over'}`);
    if (this.#pending > 0) throw new Pop3Error('protocol', 'the POP3 connection cannot be handed over while an operation is pending');
    this.#detached = true;
    const taken = this.#wire.detach('the POP3 connection was handed over (detached)');
    // The wire may have left the stream flowing; with no 'data' listener bytes would be dropped.
    taken.socket.pause();
    return taken;
  }

  // ----- internals -----

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.#pending++;
    const run = this.#tail
      .then(() => {
        const failure = this.#wire.failure;
        if (failure)
          throw failure.code === 'closed'
            ? failure
            : new Pop3Error('closed', `the POP3 connection is closed after an earlier error: ${failure.message}`, { cause: failure });
        return work();
      })
      .then(
        // Counted down before `run` settles, so a caller awaiting it can detach() at once.
        (value) => {
          this.#pending--;
          return value;
        },
        (err: unknown) => {
          this.#pending--;
          throw err;
        },
      );
    this.#tail = run.catch(() => {});
    return run;
  }

  #noteTls(): void {
    const socket = this.#wire.socket;
    if (socket instanceof tls.TLSSocket) {
      this.#tlsProtocol = socket.getProtocol() ?? 'unknown';
      this.#peerCertificate = socket.getPeerCertificate();
    }
  }

  #protocol(message: string, reply?: string): Pop3Error {
    return this.#wire.fail(new Pop3Error('protocol', message, reply !== undefined ? { reply } : {}));
  }

  /** Sends a command and expects +OK; returns that line. */
  #command(command: string): Promise<string> {
    this.#wire.write(`${command}\r\n`);
    return this.#reply(command);
  }

  /** Reads a reply that must be +OK (returned) or -ERR (a 'server' error). */
  async #reply(command: string): Promise<string> {
    const line = await this.#wire.readLine(`reply to ${command}`);
    const text = lineText(line);
    switch (statusOf(line)) {
      case 'ok':
        return text;
      case 'err':
        throw new Pop3Error('server', `the POP3 server refused ${command}: ${text}`, { reply: text });
      case 'continue':
        throw this.#protocol(`the POP3 server answered ${command} with a "+" continuation where +OK or -ERR was expected: ${quote(text)}`, text);
      default:
        throw this.#protocol(`the POP3 server's reply to ${command} is neither +OK nor -ERR: ${quote(text)}`, text);
    }
  }

  async #capa(): Promise<Pop3Capabilities> {
    try {
      await this.#command('CAPA');
    } catch (err) {
      if (err instanceof Pop3Error && err.code === 'server') return (this.#caps = NO_CAPABILITIES);
      throw err;
    }
    return (this.#caps = parseCapabilities(blockLines(await this.#collect('the CAPA listing'))));
  }

  async #startTls(): Promise<void> {
    const caps = await this.capabilities();
    if (!caps.stls) {
      throw new Pop3Error(
        'tls',
        `the POP3 server at ${this.#settings.host}:${this.#settings.port} does not offer STLS (CAPA: ${caps.raw.join(', ') || 'none'})`,
      );
    }
    await this.#exclusive(async () => {
      try {
        await this.#command('STLS');
      } catch (err) {
        if (err instanceof Pop3Error && err.code === 'server')
          throw new Pop3Error('tls', `the POP3 server refused STLS: ${err.reply ?? ''}`, err.reply !== undefined ? { reply: err.reply } : {});
        throw err;
      }
      // Bytes after the STLS answer would be taken as if they came over TLS (RFC 2595 section 3.1).
      if (this.#wire.buffered > 0) throw this.#protocol('the POP3 server sent more data after its STLS reply, before the TLS handshake');
      const { socket: plain } = this.#wire.detach();
      plain.on('error', () => {}); // reported through the TLS socket from now on
      try {
        this.#wire = new Pop3Wire(await upgradeSocket(plain, this.#settings), this.#settings);
      } catch (err) {
        plain.destroy();
        throw err;
      }
      this.#caps = undefined;
      this.#noteTls();
    });
  }

  async #bearer(mechanism: BearerMechanism, user: string, token: string): Promise<string> {
    const { host, port, servername } = this.#settings;
    const response = bearerResponse(mechanism, user, token, servername ?? host, port);
    const secrets = [token, response];
    const read = async (what: string) => {
      const line = await this.#wire.readLine(what);
      return { status: statusOf(line), text: redact(lineText(line), secrets) };
    };
    const refused = (text: string, challenge?: string) =>
      new Pop3Error('auth_rejected', `the POP3 server refused the ${mechanism} login for ${user}: ${text}`, {
        reply: text,
        ...(challenge !== undefined ? { challenge } : {}),
      });

    this.#wire.write(`AUTH ${mechanism}\r\n`);
    const first = await read(`reply to AUTH ${mechanism}`);
    if (first.status === 'err') throw new Pop3Error('auth_rejected', `the POP3 server refused AUTH ${mechanism}: ${first.text}`, { reply: first.text });
    if (first.status === 'ok')
      throw this.#protocol(
        `the POP3 server answered AUTH ${mechanism} with +OK before any credentials, where a "+" continuation was expected: ${quote(first.text)}`,
        first.text,
      );
    if (first.status !== 'continue')
      throw this.#protocol(`the POP3 server's reply to AUTH ${mechanism} is neither "+" nor -ERR: ${quote(first.text)}`, first.text);

    this.#wire.write(`${response}\r\n`);
    const second = await read(`answer to the ${mechanism} credentials`);
    let final = second;
    let challenge: string | undefined;
    if (second.status === 'continue') {
      // An error challenge (Dovecot, Gmail): answer it, then the server sends its failure.
      challenge = decodeChallenge(second.text.slice(1));
      this.#wire.write(`${errorChallengeAnswer(mechanism)}\r\n`);
      final = await read(`final answer to ${mechanism} after the server's error challenge`);
      if (final.status === 'continue')
        throw this.#protocol(
          `the POP3 server sent another "+" challenge during ${mechanism} where its final answer was expected: ${quote(final.text)}`,
          final.text,
        );
    }
    if (final.status === 'ok') {
      this.#caps = undefined;
      return final.text;
    }
    if (final.status === 'err') throw refused(final.text, challenge);
    throw this.#protocol(`the POP3 server's answer to the ${mechanism} credentials is neither +OK nor -ERR: ${quote(final.text)}`, final.text);
  }

  /** A multi-line block's content, whole (bounded by maxReplyBytes). */
  async #collect(what: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    const limit = this.#settings.maxReplyBytes;
    await this.#wire.readBlock(what, {
      data: (content) => {
        size += content.length;
        if (size > limit) throw new Pop3Error('protocol', `${what} is larger than ${limit} bytes (maxReplyBytes)`);
        parts.push(content);
        return true;
      },
    });
    return Buffer.concat(parts, size);
  }

  #parseLines<T>(command: string, content: Buffer, parse: (line: string) => T | undefined): T[] {
    const out: T[] = [];
    for (const line of blockLines(content)) {
      const item = parse(line);
      if (item === undefined) throw this.#protocol(`a line of the POP3 server's ${command} listing is malformed: ${quote(line)}`, line);
      out.push(item);
    }
    return out;
  }

  /** A message stream fed by the connection, and the sink that feeds it. */
  #messageStream(): { stream: Readable; sink: BlockSink } {
    const wire = () => this.#wire;
    const sink: BlockSink = {
      // A destroyed stream's content is read and dropped, to reach the next reply.
      data: (content) => (stream.destroyed ? true : stream.push(content)),
    };
    const stream = new Readable({
      highWaterMark: STREAM_HIGH_WATER_MARK,
      read: () => wire().resumeBlock(sink),
      destroy: (err, callback) => {
        callback(err);
        wire().resumeBlock(sink);
      },
    });
    // A connection failure while the consumer is not yet listening must not crash the process;
    // pipeline(), for await and 'error' listeners still see the error (stream.errored).
    stream.on('error', () => {});
    return { stream, sink };
  }

  /** Reads message `n`'s block into its stream; the stream ends, or is destroyed with the error. */
  async #readMessage(n: number, stream: Readable, sink: BlockSink): Promise<void> {
    try {
      await this.#wire.readBlock(`message ${n}`, sink);
    } catch (err) {
      stream.destroy(err as Error);
      throw err;
    }
    if (!stream.destroyed) stream.push(null);
  }

  /** One message of retrMany: its status line has been read; hands it to `onMessage`. */
  async #deliver(n: number, onMessage: (n: number, message: Readable) => Promise<void>): Promise<void> {
    const { stream, sink } = this.#messageStream();
    const body = this.#readMessage(n, stream, sink);
    body.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    let failed = false;
    let failure: unknown;
    try {
      await onMessage(n, stream);
    } catch (err) {
      failed = true;
      failure = err;
    }
    if (!stream.readableEnded) stream.destroy();
    await body;
    if (failed) throw failure;
  }

  /** Reads and drops `count` replies to RETRs already sent. */
  async #skipReplies(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const line = await this.#wire.readLine('reply to a pipelined RETR');
      const status = statusOf(line);
      if (status === 'ok') await this.#wire.readBlock('message (skipped)', { data: () => true });
      else if (status !== 'err')
        throw this.#protocol(`the POP3 server's reply to a pipelined RETR is neither +OK nor -ERR: ${quote(lineText(line))}`, lineText(line));
    }
  }
}
