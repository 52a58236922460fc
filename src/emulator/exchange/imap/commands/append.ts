// APPEND (RFC 3501 section 6.3.11, RFC 4315 APPENDUID): mailbox, optional flags, optional date,
// then the message as a literal (the reader in server.ts has already bounded it by
// maxMessageBytes). Keywords are dropped with Exchange's `* NO Keywords are not supported!`.
import { parseDateTime } from '../format.ts';
import { tokenText } from '../parser.ts';
import { IMAP } from '../replies.ts';
import { mailboxArg } from './folders.ts';
import { parseFlags } from './store.ts';
import { AUTHENTICATED, type CommandSpec } from './types.ts';

export const append: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  async run(conn, cmd) {
    const args = cmd.args;
    if (args.length < 2 || args.length > 4) return conn.bad(cmd.tag, IMAP.argumentCount);
    const message = args[args.length - 1]!;
    if (message.type !== 'string' || message.value.length === 0) return conn.bad(cmd.tag, IMAP.argumentCount);
    const name = mailboxArg(args[0]);
    if (name === undefined || name === '') return conn.bad(cmd.tag, IMAP.argumentError);
    let flags: string[] = [];
    let keywords = 0;
    let date = new Date();
    for (const arg of args.slice(1, -1)) {
      if (arg.type === 'list') {
        const parsed = parseFlags(arg);
        if (!parsed || parsed.recent) return conn.bad(cmd.tag, IMAP.argumentError);
        flags = parsed.flags;
        keywords = parsed.keywords;
      } else if (arg.type === 'string') {
        const d = parseDateTime(tokenText(arg) ?? '');
        if (!d) return conn.bad(cmd.tag, IMAP.argumentError);
        date = d;
      } else return conn.bad(cmd.tag, IMAP.argumentError);
    }
    const folder = conn.data!.folder(name);
    if (!folder) return conn.no(cmd.tag, `[TRYCREATE] ${IMAP.appendNoFolder}`);
    const meta = await conn.data!.append(folder.name, message.value, flags, date);
    if (keywords > 0) conn.out.line(IMAP.keywordsUnsupported);
    conn.ok(cmd.tag, `[APPENDUID ${folder.uidValidity} ${meta.uid}] ${IMAP.completed('APPEND')}`);
  },
};
