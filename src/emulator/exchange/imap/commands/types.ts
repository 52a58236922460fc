// What every command handler receives: the parsed command and the connection it runs on.
import type { ImapToken, RawCommand } from '../parser.ts';
import type { ImapConnection, ImapState } from '../session.ts';

export interface ImapCommand {
  tag: string;
  /** Upper case; for `UID FETCH` this is `FETCH` with `uid` set. */
  name: string;
  uid: boolean;
  args: ImapToken[];
  raw: RawCommand;
}

export interface CommandSpec {
  /** States in which the command may run; elsewhere Exchange answers "Command received in Invalid state." */
  states: readonly ImapState[];
  /** Whether EXPUNGE notifications may be sent with this command's answer (not during FETCH, STORE, SEARCH). */
  expunges?: boolean;
  run(conn: ImapConnection, cmd: ImapCommand): Promise<void> | void;
}

export const ANY: readonly ImapState[] = ['nonauth', 'auth', 'selected', 'not_connected'];
export const AUTHENTICATED: readonly ImapState[] = ['auth', 'selected'];
export const SELECTED: readonly ImapState[] = ['selected'];
