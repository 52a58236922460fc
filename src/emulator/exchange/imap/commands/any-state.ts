// CAPABILITY, NOOP, ID and LOGOUT: valid in every state, including "authenticated but not connected".
import { IMAP, CAPABILITY_PLAIN, CAPABILITY_POST_AUTH, CAPABILITY_PRE_AUTH, SERVER_ID } from '../replies.ts';
import type { ImapConnection } from '../session.ts';
import { ANY, type CommandSpec, type ImapCommand } from './types.ts';

export function capabilities(conn: ImapConnection): string {
  if (conn.state !== 'nonauth') return CAPABILITY_POST_AUTH;
  return conn.session.secure ? CAPABILITY_PRE_AUTH : CAPABILITY_PLAIN;
}

export const capability: CommandSpec = {
  states: ANY,
  expunges: true,
  run(conn, cmd) {
    conn.out.line(`* CAPABILITY ${capabilities(conn)}`);
    conn.ok(cmd.tag, IMAP.completed('CAPABILITY'));
  },
};

export const noop: CommandSpec = {
  states: ANY,
  expunges: true,
  run(conn, cmd) {
    conn.ok(cmd.tag, IMAP.completed('NOOP'));
  },
};

export const logout: CommandSpec = {
  states: ANY,
  expunges: true,
  run(conn, cmd) {
    conn.deselect();
    conn.out.line(IMAP.logoutBye);
    conn.ok(cmd.tag, IMAP.completed('LOGOUT'));
    conn.closing = true;
  },
};

/** RFC 2971 parameters as Exchange checks them: NIL, or up to 30 quoted name/value pairs. */
function validId(cmd: ImapCommand): boolean {
  if (cmd.args.length !== 1) return false;
  const arg = cmd.args[0]!;
  if (arg.type === 'atom') return arg.value.toUpperCase() === 'NIL';
  if (arg.type !== 'list' || arg.items.length === 0 || arg.items.length % 2 !== 0 || arg.items.length > 60) return false;
  for (let i = 0; i < arg.items.length; i++) {
    const item = arg.items[i]!;
    if (item.type !== 'string') {
      if (i % 2 === 1 && item.type === 'atom' && item.value.toUpperCase() === 'NIL') continue;
      return false;
    }
    if (i % 2 === 0 && (item.value.length === 0 || item.value.length > 30)) return false;
    if (i % 2 === 1 && item.value.length > 1024) return false;
  }
  return true;
}

export const id: CommandSpec = {
  states: ANY,
  expunges: true,
  run(conn, cmd) {
    if (!validId(cmd)) return conn.bad(cmd.tag, IMAP.idFailed);
    conn.out.line(`* ID ${SERVER_ID}`);
    conn.ok(cmd.tag, IMAP.idCompleted);
  },
};
