// SELECT, EXAMINE, CLOSE, UNSELECT, CHECK and EXPUNGE / UID EXPUNGE.
import { astring } from '../parser.ts';
import { IMAP, SYSTEM_FLAGS } from '../replies.ts';
import { parseSequenceSet, resolveSet } from '../sequence.ts';
import { findMeta, type ImapConnection } from '../session.ts';
import { mailboxArg } from './folders.ts';
import { AUTHENTICATED, SELECTED, type CommandSpec, type ImapCommand } from './types.ts';

const FLAGS = `(${SYSTEM_FLAGS.join(' ')})`;

function open(readOnly: boolean): CommandSpec {
  return {
    states: AUTHENTICATED,
    expunges: true,
    run(conn, cmd) {
      if (cmd.args.length !== 1) return conn.bad(cmd.tag, IMAP.argumentCount);
      const name = mailboxArg(cmd.args[0]);
      if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
      const folder = conn.data!.folder(name);
      if (!folder) {
        conn.deselect();
        return conn.no(cmd.tag, IMAP.doesNotExist(astring(cmd.args[0]) ?? name));
      }
      const view = conn.select(folder, readOnly);
      let firstUnseen = 0;
      for (let i = 0; i < folder.messages.length; i++) {
        if (!folder.messages[i]!.flags.includes('\\Seen')) {
          firstUnseen = i + 1;
          break;
        }
      }
      conn.out.line(`* ${view.uids.length} EXISTS`);
      conn.out.line('* 0 RECENT');
      conn.out.line(`* FLAGS ${FLAGS}`);
      conn.out.line(`* OK [PERMANENTFLAGS ${FLAGS}] Permanent flags`);
      if (firstUnseen > 0) conn.out.line(`* OK [UNSEEN ${firstUnseen}] Is the first unseen message`);
      conn.out.line(`* OK [UIDVALIDITY ${folder.uidValidity}] UIDVALIDITY value`);
      conn.out.line(`* OK [UIDNEXT ${folder.uidNext}] The next unique identifier value`);
      conn.ok(cmd.tag, readOnly ? '[READ-ONLY] EXAMINE completed.' : '[READ-WRITE] SELECT completed.');
    },
  };
}

export const select = open(false);
export const examine = open(true);

/** UIDs of the messages the client knows that carry \Deleted. */
function deletedUids(conn: ImapConnection, only?: Set<number>): number[] {
  const view = conn.view!;
  const out: number[] = [];
  for (const uid of view.uids) {
    if (only && !only.has(uid)) continue;
    const meta = findMeta(view.folder, uid);
    if (meta?.flags.includes('\\Deleted')) out.push(uid);
  }
  return out;
}

export const close: CommandSpec = {
  states: SELECTED,
  expunges: true,
  async run(conn, cmd) {
    const view = conn.view!;
    if (!view.readOnly) {
      const uids = deletedUids(conn);
      if (uids.length > 0) await conn.data!.expunge(view.folder.name, uids);
    }
    // No EXPUNGE responses: the folder is no longer selected.
    conn.deselect();
    conn.ok(cmd.tag, IMAP.completed('CLOSE'));
  },
};

export const unselect: CommandSpec = {
  states: SELECTED,
  expunges: true,
  run(conn, cmd) {
    conn.deselect();
    conn.ok(cmd.tag, IMAP.completed('UNSELECT'));
  },
};

export const check: CommandSpec = {
  states: SELECTED,
  expunges: true,
  async run(conn, cmd) {
    await conn.data!.flush();
    conn.ok(cmd.tag, IMAP.completed('CHECK'));
  },
};

async function expungeRun(conn: ImapConnection, cmd: ImapCommand): Promise<void> {
  const view = conn.view!;
  if (cmd.args.length !== (cmd.uid ? 1 : 0)) return conn.bad(cmd.tag, IMAP.argumentCount);
  if (view.readOnly) return conn.no(cmd.tag, IMAP.invalidState);
  let only: Set<number> | undefined;
  if (cmd.uid) {
    const text = astring(cmd.args[0]);
    const ranges = cmd.args[0]!.type === 'atom' && text !== undefined ? parseSequenceSet(text) : undefined;
    if (!ranges) return conn.bad(cmd.tag, IMAP.messageSetInvalid);
    only = new Set(resolveSet(ranges, view.uids, true).indexes.map((i) => view.uids[i]!));
  }
  const uids = deletedUids(conn, only);
  if (uids.length > 0) await conn.data!.expunge(view.folder.name, uids);
  // Exchange answers EXPUNGE responses (highest first), then always the new EXISTS count.
  if (!conn.notify({ expunge: true, uid: cmd.uid })) conn.out.line(`* ${view.uids.length} EXISTS`);
  conn.ok(cmd.tag, IMAP.completed('EXPUNGE'));
}

export const expunge: CommandSpec = {
  states: SELECTED,
  expunges: true,
  run: expungeRun,
};
