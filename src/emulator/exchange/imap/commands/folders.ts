// Folder commands: NAMESPACE, LIST, LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.
// Exchange's hierarchy delimiter is `/`; names travel in modified UTF-7.
import { FolderError, type FolderData, type MailboxData } from '../../mail-store.ts';
import { mailboxName } from '../format.ts';
import { astring, decodeMailboxName, type ImapToken } from '../parser.ts';
import { IMAP } from '../replies.ts';
import type { ImapConnection } from '../session.ts';
import { AUTHENTICATED, type CommandSpec } from './types.ts';

/** A mailbox argument decoded and normalised (`inbox` → `INBOX`, no trailing `/`). */
export function mailboxArg(token: ImapToken | undefined): string | undefined {
  const text = astring(token);
  if (text === undefined) return undefined;
  let name = decodeMailboxName(text);
  if (name === undefined) return undefined;
  while (name.endsWith('/')) name = name.slice(0, -1);
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  if (name.toUpperCase().startsWith('INBOX/')) name = `INBOX${name.slice(5)}`;
  return name;
}

function hasChildren(data: MailboxData, name: string): boolean {
  const prefix = `${name}/`;
  return data.folders().some((f) => f.name.startsWith(prefix));
}

function sortedFolders(data: MailboxData): FolderData[] {
  return [...data.folders()].sort((a, b) => a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }));
}

/** Longest folder name accepted by CREATE and RENAME [C: Exchange limits display names]. */
const MAX_NAME = 255;
const MAX_PATTERN = 1024;

type Glob = (number | '*' | '%')[];

/** The LIST reference and pattern as a matcher; undefined beyond Exchange's 10 wildcards. */
function pattern(reference: string, mailbox: string): Glob | undefined {
  let wildcards = 0;
  for (const c of mailbox) if (c === '*' || c === '%') wildcards++;
  if (wildcards > 10 || reference.length + mailbox.length > MAX_PATTERN) return undefined;
  const glob: Glob = [];
  for (const c of reference.toLowerCase()) glob.push(c.charCodeAt(0));
  for (const c of mailbox.toLowerCase()) glob.push(c === '*' || c === '%' ? c : c.charCodeAt(0));
  return glob;
}

/**
 * Whether a folder name matches (case-insensitively): `*` matches anything, `%` anything but
 * the delimiter. A set-of-states walk, so hostile patterns cost length × length, never more.
 */
function matches(glob: Glob, name: string): boolean {
  const text = name.toLowerCase();
  let active = new Uint8Array(glob.length + 1);
  const close = (states: Uint8Array) => {
    for (let i = 0; i < glob.length; i++) if (states[i] && typeof glob[i] === 'string') states[i + 1] = 1;
  };
  active[0] = 1;
  close(active);
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    const next = new Uint8Array(glob.length + 1);
    let any = false;
    for (let i = 0; i < glob.length; i++) {
      if (!active[i]) continue;
      const g = glob[i]!;
      if (g === '*' || (g === '%' && c !== 0x2f)) next[i] = 1;
      else if (g === c) next[i + 1] = 1;
      else continue;
      any = true;
    }
    if (!any) return false;
    close(next);
    active = next;
  }
  return active[glob.length] === 1;
}

/** Names that have at least one folder below them. */
function parents(data: MailboxData): Set<string> {
  const out = new Set<string>();
  for (const f of data.folders()) {
    let slash = f.name.lastIndexOf('/');
    while (slash > 0) {
      const parent = f.name.slice(0, slash);
      if (out.has(parent)) break;
      out.add(parent);
      slash = parent.lastIndexOf('/');
    }
  }
  return out;
}

function listAttributes(folder: FolderData, withChildren: Set<string>): string {
  const attrs: string[] = [];
  if (folder.messages.some((m) => !m.flags.includes('\\Seen'))) attrs.push('\\Marked');
  attrs.push(withChildren.has(folder.name) ? '\\HasChildren' : '\\HasNoChildren');
  if (folder.specialUse) attrs.push(folder.specialUse);
  return attrs.join(' ');
}

function listArgs(conn: ImapConnection, tag: string, args: ImapToken[]): { reference: string; mailbox: string } | undefined {
  if (args.length !== 2) {
    conn.bad(tag, IMAP.argumentCount);
    return undefined;
  }
  const reference = astring(args[0]);
  const mailbox = astring(args[1]);
  const ref = reference === undefined ? undefined : decodeMailboxName(reference);
  const box = mailbox === undefined ? undefined : decodeMailboxName(mailbox);
  if (ref === undefined || box === undefined) {
    conn.bad(tag, IMAP.argumentError);
    return undefined;
  }
  return { reference: ref, mailbox: box };
}

export const namespace: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  run(conn, cmd) {
    conn.out.line('* NAMESPACE (("" "/")) NIL NIL');
    conn.ok(cmd.tag, IMAP.completed('NAMESPACE'));
  },
};

/** LIST and LSUB differ only in their root line, which folders they name, and the attributes. */
function listing(verb: 'LIST' | 'LSUB', rootLine: string, lineFor: (data: MailboxData) => (folder: FolderData) => string | undefined): CommandSpec {
  return {
    states: AUTHENTICATED,
    expunges: true,
    run(conn, cmd) {
      const args = listArgs(conn, cmd.tag, cmd.args);
      if (!args) return;
      if (args.mailbox === '') {
        conn.out.line(rootLine);
        return conn.ok(cmd.tag, IMAP.completed(verb));
      }
      const re = pattern(args.reference, args.mailbox);
      if (!re) return conn.bad(cmd.tag, IMAP.argumentError);
      const data = conn.data!;
      const line = lineFor(data);
      let text = '';
      for (const folder of sortedFolders(data)) {
        const entry = matches(re, folder.name) ? line(folder) : undefined;
        if (entry !== undefined) text += `* ${verb} ${entry} "/" ${mailboxName(folder.name)}\r\n`;
      }
      conn.out.push(text);
      conn.ok(cmd.tag, IMAP.completed(verb));
    },
  };
}

export const list = listing('LIST', '* LIST (\\Noselect \\HasChildren) "/" ""', (data) => {
  const withChildren = parents(data);
  return (folder) => `(${listAttributes(folder, withChildren)})`;
});

export const lsub = listing('LSUB', '* LSUB (\\Noselect) "/" ""', () => (folder) => (folder.subscribed ? '()' : undefined));

const STATUS_ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN']);

export const status: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  run(conn, cmd) {
    if (cmd.args.length !== 2) return conn.bad(cmd.tag, IMAP.argumentCount);
    const name = mailboxArg(cmd.args[0]);
    if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
    const folder = conn.data!.folder(name);
    if (!folder) return conn.no(cmd.tag, IMAP.doesNotExist(astring(cmd.args[0]) ?? name));
    const itemsArg = cmd.args[1]!;
    const items: string[] = [];
    if (itemsArg.type === 'list') {
      for (const t of itemsArg.items) {
        if (t.type !== 'atom') return conn.bad(cmd.tag, IMAP.argumentError);
        items.push(t.value);
      }
    } else if (itemsArg.type === 'atom') items.push(itemsArg.value);
    else return conn.bad(cmd.tag, IMAP.argumentError);
    const values: string[] = [];
    for (const item of items) {
      const key = item.toUpperCase();
      if (!STATUS_ITEMS.has(key)) return conn.bad(cmd.tag, IMAP.argumentError);
      let value = 0;
      if (key === 'MESSAGES') value = folder.messages.length;
      else if (key === 'UIDNEXT') value = folder.uidNext;
      else if (key === 'UIDVALIDITY') value = folder.uidValidity;
      else if (key === 'UNSEEN') value = folder.messages.reduce((n, m) => (m.flags.includes('\\Seen') ? n : n + 1), 0);
      values.push(`${item} ${value}`);
    }
    // Exchange leaves a space before the line break.
    conn.out.line(`* STATUS ${mailboxName(folder.name)} (${values.join(' ')}) `);
    conn.ok(cmd.tag, IMAP.completed('STATUS'));
  },
};

export const create: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  async run(conn, cmd) {
    if (cmd.args.length !== 1) return conn.bad(cmd.tag, IMAP.argumentCount);
    const name = mailboxArg(cmd.args[0]);
    if (name === undefined || name === '' || name.length > MAX_NAME || name.split('/').some((p) => p === '')) return conn.bad(cmd.tag, IMAP.argumentError);
    const data = conn.data!;
    if (name === 'INBOX' || data.folder(name)) return conn.no(cmd.tag, IMAP.alreadyExists);
    // Missing parents are created too, as Exchange does.
    const parts = name.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (!data.folder(path)) await data.createFolder(path);
    }
    conn.ok(cmd.tag, IMAP.completed('CREATE'));
  },
};

export const remove: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  async run(conn, cmd) {
    if (cmd.args.length !== 1) return conn.bad(cmd.tag, IMAP.argumentCount);
    const name = mailboxArg(cmd.args[0]);
    if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
    const data = conn.data!;
    const folder = data.folder(name);
    if (!folder) return conn.no(cmd.tag, IMAP.deleteNotFound);
    if (hasChildren(data, folder.name)) return conn.no(cmd.tag, IMAP.deleteHasChildren);
    if (folder.name === 'INBOX') return conn.no(cmd.tag, IMAP.deleteSpecial(astring(cmd.args[0]) ?? name));
    if (conn.view?.folder === folder) conn.deselect();
    try {
      await data.deleteFolder(folder.name);
    } catch (err) {
      if (!(err instanceof FolderError)) throw err;
      return conn.no(cmd.tag, IMAP.deleteFailed);
    }
    conn.ok(cmd.tag, IMAP.completed('DELETE'));
  },
};

export const rename: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  async run(conn, cmd) {
    if (cmd.args.length !== 2) return conn.bad(cmd.tag, IMAP.argumentCount);
    const from = mailboxArg(cmd.args[0]);
    const to = mailboxArg(cmd.args[1]);
    if (from === undefined || to === undefined || from === '' || to === '' || to.length > MAX_NAME || to.split('/').some((p) => p === '')) {
      return conn.bad(cmd.tag, IMAP.argumentError);
    }
    const data = conn.data!;
    if (data.folder(to)) return conn.no(cmd.tag, IMAP.renameTargetExists);
    const source = data.folder(from);
    if (!source) return conn.no(cmd.tag, IMAP.renameSourceMissing);
    const slash = to.lastIndexOf('/');
    const parent = slash > 0 ? to.slice(0, slash) : '';
    if (parent && !data.folder(parent)) return conn.bad(cmd.tag, IMAP.argumentError);
    if (to.startsWith(`${source.name}/`)) return conn.bad(cmd.tag, IMAP.argumentError);
    if (source.name === 'INBOX') {
      // Renaming INBOX moves its messages to a new folder; INBOX stays, empty.
      await data.createFolder(to);
      const uids = source.messages.map((m) => m.uid);
      if (uids.length > 0) {
        await data.copy('INBOX', uids, to);
        await data.expunge('INBOX', uids);
      }
      return conn.ok(cmd.tag, IMAP.completed('RENAME'));
    }
    const prefix = `${source.name}/`;
    const children = data.folders().filter((f) => f.name.startsWith(prefix));
    const oldName = source.name;
    await data.renameFolder(oldName, to);
    for (const child of children) await data.renameFolder(child.name, `${to}/${child.name.slice(prefix.length)}`);
    conn.ok(cmd.tag, IMAP.completed('RENAME'));
  },
};

function subscription(subscribe: boolean): CommandSpec {
  const word = subscribe ? 'SUBSCRIBE' : 'UNSUBSCRIBE';
  return {
    states: AUTHENTICATED,
    expunges: true,
    async run(conn, cmd) {
      if (cmd.args.length !== 1) return conn.bad(cmd.tag, IMAP.argumentCount);
      const name = mailboxArg(cmd.args[0]);
      if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
      if (!conn.data!.folder(name)) return conn.bad(cmd.tag, `${word} failed.`);
      await conn.data!.setSubscribed(name, subscribe);
      conn.ok(cmd.tag, IMAP.completed(word));
    },
  };
}

export const subscribe = subscription(true);
export const unsubscribe = subscription(false);
