// The command table: which handler runs each command, and in which states.
import { append } from './append.ts';
import { capability, id, logout, noop } from './any-state.ts';
import { authenticate, login, starttls } from './auth.ts';
import { copy, move } from './copy-move.ts';
import { fetch } from './fetch.ts';
import { create, list, lsub, namespace, remove, rename, status, subscribe, unsubscribe } from './folders.ts';
import { idle } from './idle.ts';
import { search } from './search.ts';
import { check, close, examine, expunge, select, unselect } from './select.ts';
import { store } from './store.ts';
import type { CommandSpec } from './types.ts';

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([
  ['CAPABILITY', capability],
  ['NOOP', noop],
  ['LOGOUT', logout],
  ['ID', id],
  ['STARTTLS', starttls],
  ['AUTHENTICATE', authenticate],
  ['LOGIN', login],
  ['NAMESPACE', namespace],
  ['LIST', list],
  ['LSUB', lsub],
  ['STATUS', status],
  ['CREATE', create],
  ['DELETE', remove],
  ['RENAME', rename],
  ['SUBSCRIBE', subscribe],
  ['UNSUBSCRIBE', unsubscribe],
  ['SELECT', select],
  ['EXAMINE', examine],
  ['CLOSE', close],
  ['UNSELECT', unselect],
  ['CHECK', check],
  ['EXPUNGE', expunge],
  ['FETCH', fetch],
  ['SEARCH', search],
  ['STORE', store],
  ['COPY', copy],
  ['MOVE', move],
  ['APPEND', append],
  ['IDLE', idle],
]);

/** Commands that take the UID prefix (UID EXPUNGE is UIDPLUS). */
export const UID_COMMANDS = new Set(['FETCH', 'SEARCH', 'STORE', 'COPY', 'MOVE', 'EXPUNGE']);
