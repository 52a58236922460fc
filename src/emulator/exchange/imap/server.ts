// Exchange Online's IMAP front end (reference sections 4.4, 8.2, 8.3): implicit TLS (like 993) or
// plain with STARTTLS (like 143), XOAUTH2 only, then enough IMAP4rev1 (with UIDPLUS, MOVE, IDLE,
// ID, UNSELECT, NAMESPACE, LITERAL+) for real clients, answering in Exchange's words.
//
// Every size is bounded: a command line by mail.maxLineBytes (longer: BAD and the session
// closes), a literal by maxLineBytes (APPEND's message: maxMessageBytes), a whole command by a
// few lines' worth. A too-big synchronizing literal is refused without `+`; a too-big LITERAL+
// one, whose bytes are already coming, also ends the session. Like Exchange, the third BAD
// reply of a session closes it.
import { LineTooLongError } from '../../../net/line-reader.ts';
import { startLineServer, type LineSession, type RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';
import { COMMANDS, UID_COMMANDS } from './commands/index.ts';
import type { ImapCommand } from './commands/types.ts';
import { ImapSyntaxError, isPrintableAscii, literalMarker, splitHead, tokenize, type RawCommand } from './parser.ts';
import { IMAP } from './replies.ts';
import { ImapConnection } from './session.ts';

export interface ImapServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STARTTLS offered. */
  implicitTls: boolean;
  /** BAD replies before the session is closed; Exchange closes at the third. */
  maxInvalidCommands?: number;
}

export async function startImapServer(context: ExchangeContext, options: ImapServerOptions): Promise<RunningLineServer> {
  const maxInvalidCommands = options.maxInvalidCommands ?? 3;
  return startLineServer(
    {
      host: options.host,
      port: options.port,
      ...(options.implicitTls ? { implicitTls: context.tls } : {}),
      maxLineBytes: context.settings.maxLineBytes,
      idleTimeoutMs: context.settings.idleTimeoutSeconds * 1000,
    },
    (session) => runSession(new ImapConnection(context, session, { maxInvalidCommands })),
    (session) => session.write(`${IMAP.bye}\r\n`),
  );
}

interface Incoming {
  tag: string;
  name: string;
  restStart: number;
  raw: RawCommand;
}

/** A tag as Exchange echoes it, or `*` when the client's cannot be echoed. */
function safeTag(tag: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(tag) ? tag : '*';
}

/** Reads one command with its literals; null when the peer is gone, undefined when already answered. */
async function readCommand(conn: ImapConnection): Promise<Incoming | null | undefined> {
  const reader = () => conn.session.reader;
  const settings = conn.ctx.settings;
  const tooLong = () => {
    conn.out.line(`* BAD ${IMAP.commandError}`);
    conn.bye();
    return undefined;
  };
  let line: Buffer | null;
  try {
    line = await reader().readLine();
  } catch (err) {
    if (err instanceof LineTooLongError) return tooLong();
    throw err;
  }
  if (line === null) return null;
  const head = splitHead(line);
  const lines = [line];
  const literals: Buffer[] = [];
  const isAppend = head.name.toUpperCase() === 'APPEND' && conn.authenticated;
  const literalLimit = isAppend ? settings.maxMessageBytes : settings.maxLineBytes;
  const totalLimit = (isAppend ? settings.maxMessageBytes : 0) + 4 * settings.maxLineBytes;
  let total = line.length;
  for (;;) {
    const marker = literalMarker(line);
    if (!marker) break;
    if (marker.size > literalLimit || total + marker.size > totalLimit || literals.length >= 256) {
      conn.bad(safeTag(head.tag), IMAP.argumentError);
      // The bytes of a refused LITERAL+ are on their way and cannot be told apart from commands.
      if (!marker.sync) conn.bye();
      return undefined;
    }
    if (marker.sync) {
      conn.out.line(IMAP.continueLiteral);
      await conn.out.flush();
    }
    const literal = await reader().readBytes(marker.size);
    if (literal === null) return null;
    literals.push(literal);
    total += marker.size;
    try {
      line = await reader().readLine();
    } catch (err) {
      if (err instanceof LineTooLongError) return tooLong();
      throw err;
    }
    if (line === null) return null;
    lines.push(line);
    total += line.length;
    if (total > totalLimit) {
      conn.bad(safeTag(head.tag), IMAP.argumentError);
      conn.bye();
      return undefined;
    }
  }
  return { tag: head.tag, name: head.name, restStart: head.restStart, raw: { lines, literals } };
}

async function dispatch(conn: ImapConnection, incoming: Incoming): Promise<void> {
  const first = incoming.raw.lines[0]!;
  if (incoming.tag === '') return conn.bad('*', IMAP.commandError);
  const tag = safeTag(incoming.tag);
  if (!incoming.raw.lines.every((l) => isPrintableAscii(l))) return conn.bad(tag, IMAP.notAscii);
  let name = incoming.name.toUpperCase();
  let restStart = incoming.restStart;
  let uid = false;
  if (name === 'UID') {
    const sub = splitHead(first.subarray(restStart));
    const subName = sub.tag.toUpperCase();
    if (!UID_COMMANDS.has(subName)) return conn.bad(tag, IMAP.commandError);
    uid = true;
    name = subName;
    restStart += sub.tag.length + 1;
  }
  const spec = COMMANDS.get(name);
  if (!spec) return conn.bad(tag, IMAP.commandError);
  if (!spec.states.includes(conn.state)) {
    if (conn.state === 'not_connected') {
      conn.tagged(tag, 'BAD', IMAP.notConnected);
      return conn.bye();
    }
    return conn.bad(tag, IMAP.invalidState);
  }
  conn.current = { expunges: spec.expunges ?? true, uid };
  // A command on a folder another session deleted (commands valid outside a folder still run).
  if (conn.state === 'selected' && !conn.viewAlive && !spec.states.includes('auth')) {
    conn.deselect();
    return conn.no(tag, IMAP.mailboxGone);
  }
  let args;
  try {
    args = tokenize(incoming.raw, Math.min(restStart, first.length));
  } catch (err) {
    if (!(err instanceof ImapSyntaxError)) throw err;
    return conn.bad(tag, IMAP.argumentError);
  }
  const cmd: ImapCommand = { tag, name, uid, args, raw: incoming.raw };
  await spec.run(conn, cmd);
}

async function runSession(conn: ImapConnection): Promise<void> {
  const session: LineSession = conn.session;
  try {
    conn.out.line(IMAP.greeting(conn.ctx.greetingTag));
    await conn.out.flush();
    while (!conn.closing && !session.closed) {
      conn.current = { expunges: true, uid: false };
      const incoming = await readCommand(conn);
      if (incoming === null) break;
      if (incoming) await dispatch(conn, incoming);
      await conn.out.flush();
    }
    await conn.out.flush();
  } finally {
    // The mailbox's connection slot is free from here on, even while the socket lingers
    // (startLineServer ends every session with LineSession.end()).
    conn.dispose();
  }
}
