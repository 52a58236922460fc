// IDLE (RFC 2177): `+ IDLE accepted, awaiting DONE command.`, then changes to the selected
// folder as they happen (new mail from any session, SMTP or the admin API; expunges; flags),
// until the client sends DONE.
import { LineTooLongError } from '../../../../net/line-reader.ts';
import { IMAP } from '../replies.ts';
import { AUTHENTICATED, type CommandSpec } from './types.ts';

export const idle: CommandSpec = {
  states: AUTHENTICATED,
  expunges: true,
  async run(conn, cmd) {
    if (cmd.args.length !== 0) return conn.bad(cmd.tag, IMAP.argumentCount);
    conn.out.line(IMAP.idleAccepted);
    conn.notify({ expunge: true });
    await conn.out.flush();
    const reading = conn.session.reader.readLine().then(
      (line) => ({ line }),
      (err: unknown) => ({ err }),
    );
    let done: { line: Buffer | null } | { err: unknown } | undefined;
    void reading.then((r) => {
      done = r;
      conn.cancelWait();
    });
    for (;;) {
      if (done) break;
      await conn.changed();
      if (done) break;
      if (conn.session.closed) return;
      conn.notify({ expunge: true });
      await conn.out.flush();
    }
    if ('err' in done) {
      if (!(done.err instanceof LineTooLongError)) throw done.err;
      conn.bad(cmd.tag, IMAP.argumentError);
      return conn.bye();
    }
    if (done.line === null) {
      conn.closing = true;
      return;
    }
    const word = done.line.toString('latin1').trim().split(' ')[0]!.toUpperCase();
    if (word !== 'DONE') return conn.bad(cmd.tag, IMAP.invalidState);
    conn.ok(cmd.tag, IMAP.completed('IDLE'));
  },
};
