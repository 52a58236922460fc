// STORE and UID STORE: +FLAGS, -FLAGS, FLAGS, with .SILENT. Exchange keeps only the system
// flags and $MDNSent; any other keyword (and \Recent) is a "Command Argument Error. 11".
// Without .SILENT every message named gets an untagged FETCH with its flags, changed or not.
import { canonicalFlag } from '../format.ts';
import type { ImapToken } from '../parser.ts';
import { IMAP } from '../replies.ts';
import { parseSequenceSet, resolveSet } from '../sequence.ts';
import { findMeta, type ImapConnection } from '../session.ts';
import { SELECTED, type CommandSpec, type ImapCommand } from './types.ts';

const ITEM = /^([+-]?)FLAGS(\.SILENT)?$/i;

/** The flags of a STORE or APPEND argument; `keywords` counts the ones Exchange cannot keep. */
export function parseFlags(arg: ImapToken): { flags: string[]; keywords: number; recent: boolean } | undefined {
  const atoms = arg.type === 'list' ? arg.items : [arg];
  const flags = new Set<string>();
  let keywords = 0;
  let recent = false;
  for (const t of atoms) {
    if (t.type !== 'atom') return undefined;
    if (t.value.toLowerCase() === '\\recent') {
      recent = true;
      continue;
    }
    const flag = canonicalFlag(t.value);
    if (flag) flags.add(flag);
    else if (t.value.startsWith('\\') || !/^[\x21-\x7e]+$/.test(t.value) || /[(){%*"\]]/.test(t.value)) return undefined;
    else keywords++;
  }
  return { flags: [...flags], keywords, recent };
}

async function storeRun(conn: ImapConnection, cmd: ImapCommand): Promise<void> {
  const view = conn.view!;
  if (cmd.args.length !== 3) return conn.bad(cmd.tag, IMAP.argumentCount);
  if (view.readOnly) return conn.no(cmd.tag, IMAP.invalidState);
  const ranges = cmd.args[0]!.type === 'atom' ? parseSequenceSet(cmd.args[0]!.value) : undefined;
  if (!ranges) return conn.bad(cmd.tag, IMAP.messageSetInvalid);
  const item = cmd.args[1]!.type === 'atom' ? ITEM.exec(cmd.args[1]!.value) : null;
  if (!item) return conn.bad(cmd.tag, IMAP.argumentError);
  const parsed = parseFlags(cmd.args[2]!);
  if (!parsed || parsed.keywords > 0 || parsed.recent) return conn.bad(cmd.tag, IMAP.argumentError);
  const mode = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'set';
  const silent = item[2] !== undefined;
  const { indexes, outOfRange } = resolveSet(ranges, view.uids, cmd.uid);
  let gone = false;
  const uids: number[] = [];
  for (const i of indexes) {
    const uid = view.uids[i]!;
    if (findMeta(view.folder, uid) && !view.gone.has(uid)) uids.push(uid);
    else gone = true;
  }
  if (uids.length > 0) await conn.data!.setFlags(view.folder.name, uids, parsed.flags, mode);
  for (const uid of uids) {
    if (silent) view.flagged.delete(uid);
    else view.flagged.add(uid);
  }
  if (outOfRange && !cmd.uid) return conn.no(cmd.tag, IMAP.messageSetInvalid);
  if (gone) return conn.no(cmd.tag, IMAP.messagesGone);
  conn.ok(cmd.tag, IMAP.completed('STORE'));
}

export const store: CommandSpec = {
  states: SELECTED,
  expunges: false,
  run: storeRun,
};
