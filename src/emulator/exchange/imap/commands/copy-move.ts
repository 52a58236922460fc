// COPY / UID COPY and MOVE / UID MOVE (RFC 4315 COPYUID, RFC 6851). Exchange answers COPY with
// `OK [COPYUID ...] COPY completed.` and MOVE with an untagged `* OK [COPYUID ...]`, the
// EXPUNGE responses, then `OK MOVE completed.` [O: ruby/net-imap #285, MailKit #1275].
import { IMAP } from '../replies.ts';
import { formatUidSet, parseSequenceSet, resolveSet } from '../sequence.ts';
import { findMeta, type ImapConnection } from '../session.ts';
import { mailboxArg } from './folders.ts';
import { SELECTED, type CommandSpec, type ImapCommand } from './types.ts';

async function transfer(conn: ImapConnection, cmd: ImapCommand, move: boolean): Promise<void> {
  const view = conn.view!;
  const data = conn.data!;
  if (cmd.args.length !== 2) return conn.bad(cmd.tag, IMAP.argumentCount);
  const name = mailboxArg(cmd.args[1]);
  if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
  const dest = data.folder(name);
  if (!dest) return conn.no(cmd.tag, `[TRYCREATE] ${IMAP.noDestination}`);
  const ranges = cmd.args[0]!.type === 'atom' ? parseSequenceSet(cmd.args[0]!.value) : undefined;
  if (!ranges) return conn.bad(cmd.tag, IMAP.messageSetInvalid);
  const { indexes, outOfRange } = resolveSet(ranges, view.uids, cmd.uid);
  if (outOfRange && !cmd.uid) return conn.no(cmd.tag, IMAP.messageSetInvalid);
  const uids: number[] = [];
  for (const i of indexes) {
    const uid = view.uids[i]!;
    if (!findMeta(view.folder, uid) || view.gone.has(uid)) return conn.no(cmd.tag, IMAP.messagesGone);
    uids.push(uid);
  }
  const pairs = uids.length > 0 ? await data.copy(view.folder.name, uids, dest.name) : [];
  const copyuid = `[COPYUID ${dest.uidValidity} ${formatUidSet(pairs.map((p) => p[0]))} ${formatUidSet(pairs.map((p) => p[1]))}]`;
  if (!move) return conn.ok(cmd.tag, `${copyuid} ${IMAP.completed('COPY')}`);
  if (pairs.length > 0)
    await data.expunge(
      view.folder.name,
      pairs.map((p) => p[0]),
    );
  conn.out.line(`* OK ${copyuid}`);
  conn.ok(cmd.tag, IMAP.completed('MOVE'));
}

export const copy: CommandSpec = {
  states: SELECTED,
  expunges: true,
  run: (conn, cmd) => transfer(conn, cmd, false),
};

export const move: CommandSpec = {
  states: SELECTED,
  expunges: true,
  run: (conn, cmd) => transfer(conn, cmd, true),
};
