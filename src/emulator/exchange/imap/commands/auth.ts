// STARTTLS, AUTHENTICATE and LOGIN (reference sections 4.4, 8.2, 8.3). Exchange Online with OAuth
// only: XOAUTH2 with or without SASL-IR, judged by decideAccess; PLAIN and LOGIN always fail.
// Some refusals come after a successful AUTHENTICATE ("authenticated but not connected").
import { LineTooLongError } from '../../../../net/line-reader.ts';
import { decideAccess } from '../../mailbox-access.ts';
import { parseXoauth2 } from '../../../../net/sasl-xoauth2.ts';
import { IMAP } from '../replies.ts';
import type { ImapConnection } from '../session.ts';
import { tokenText } from '../parser.ts';
import type { CommandSpec, ImapCommand } from './types.ts';

export const starttls: CommandSpec = {
  states: ['nonauth'],
  async run(conn, cmd) {
    if (conn.session.secure) return conn.bad(cmd.tag, IMAP.invalidState);
    if (conn.session.reader.buffered > 0) {
      // Bytes sent after STARTTLS would be read as if they came over TLS (CVE-2011-0411).
      return conn.bad(cmd.tag, IMAP.argumentError);
    }
    conn.ok(cmd.tag, IMAP.beginTls);
    await conn.out.flush();
    let upgraded: boolean;
    try {
      upgraded = await conn.session.startTls(conn.ctx.tls);
    } catch {
      conn.closing = true;
      return;
    }
    if (!upgraded) {
      conn.out.line(`${cmd.tag} BAD ${IMAP.tlsFailed}`);
      conn.out.line(IMAP.tlsByte);
      conn.closing = true;
    }
  },
};

function count(conn: ImapConnection, ok: boolean): void {
  conn.ctx.identity.count('imap', ok ? 'auth_ok' : 'auth_failed');
}

/** The client's response to `+ `: a line, or undefined when the session has to end. */
async function readResponse(conn: ImapConnection, tag: string): Promise<string | undefined> {
  conn.out.line(IMAP.continueAuth);
  await conn.out.flush();
  try {
    const line = await conn.session.reader.readLine();
    if (line === null) {
      conn.closing = true;
      return undefined;
    }
    return line.toString('latin1');
  } catch (err) {
    if (!(err instanceof LineTooLongError)) throw err;
    conn.bad(tag, IMAP.argumentError);
    conn.bye();
    return undefined;
  }
}

/** After AUTHENTICATE succeeded on the wire but the mailbox cannot be opened. */
function notConnected(conn: ImapConnection, tag: string): void {
  count(conn, false);
  conn.state = 'not_connected';
  conn.ok(tag, IMAP.authOk);
}

export const authenticate: CommandSpec = {
  states: ['nonauth', 'not_connected'],
  async run(conn, cmd) {
    // Port 143 offers no mechanism before STARTTLS (LOGINDISABLED).
    if (!conn.session.secure) return conn.bad(cmd.tag, IMAP.invalidState);
    if (cmd.args.length < 1 || cmd.args.length > 2) return conn.bad(cmd.tag, IMAP.argumentCount);
    const mechanism = cmd.args[0]!.type === 'atom' ? tokenText(cmd.args[0])!.toUpperCase() : '';
    if (mechanism !== 'XOAUTH2' && mechanism !== 'PLAIN') return conn.bad(cmd.tag, IMAP.argumentError);
    let response: string | undefined;
    if (cmd.args.length === 2) {
      response = tokenText(cmd.args[1]) ?? '';
      if (response === '=') response = '';
    } else {
      response = await readResponse(conn, cmd.tag);
      if (response === undefined) return;
    }
    if (response.trim() === '*') return conn.no(cmd.tag, IMAP.authCanceled);
    if (mechanism === 'PLAIN') {
      // OAuth-only tenants: basic authentication is refused whatever the password.
      count(conn, false);
      return conn.no(cmd.tag, IMAP.authFailed);
    }
    await xoauth2(conn, cmd, response);
  },
};

async function xoauth2(conn: ImapConnection, cmd: ImapCommand, response: string): Promise<void> {
  const credentials = parseXoauth2(response);
  if (!credentials) {
    count(conn, false);
    return conn.no(cmd.tag, IMAP.authFailed);
  }
  const decision = await decideAccess(conn.ctx.identity, 'imap', credentials.user, credentials.token);
  if (decision.kind === 'refused') {
    count(conn, false);
    return conn.no(cmd.tag, IMAP.authFailed);
  }
  const address = decision.mailbox?.address ?? credentials.user;
  const failure = conn.ctx.takeFailure('imap', address);
  if (failure) {
    if (failure.kind === 'not-connected') return notConnected(conn, cmd.tag);
    count(conn, false);
    return conn.bad(cmd.tag, failure.kind === 'throttled' ? IMAP.throttled(failure.backoffMs) : IMAP.unavailable);
  }
  if (decision.kind === 'not_connected') return notConnected(conn, cmd.tag);
  // Over the per-mailbox connection limit Exchange lets the login through and then refuses the
  // mailbox, like the other "authenticated but not connected" cases [C: community reports tie
  // that reply to too many concurrent connections].
  if (!conn.ctx.acquireConnection('imap', decision.mailbox.address)) return notConnected(conn, cmd.tag);
  conn.slot = decision.mailbox.address;
  try {
    conn.attach(decision.mailbox, await conn.ctx.openMailbox(decision.mailbox));
  } catch {
    conn.ctx.releaseConnection('imap', decision.mailbox.address);
    conn.slot = undefined;
    count(conn, false);
    return conn.bad(cmd.tag, IMAP.unavailable);
  }
  count(conn, true);
  conn.ok(cmd.tag, IMAP.authOk);
}

export const login: CommandSpec = {
  states: ['nonauth', 'not_connected'],
  run(conn, cmd) {
    if (!conn.session.secure) return conn.bad(cmd.tag, IMAP.invalidState);
    count(conn, false);
    conn.no(cmd.tag, IMAP.loginFailed);
  },
};
