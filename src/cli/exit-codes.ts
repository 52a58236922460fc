// Exit codes of every mailbridge command (documented in docs/cli.md), and the one place that maps
// an error's code to one.
import { MailbridgeError, type ErrorCode } from '../errors.ts';

export const EXIT = {
  ok: 0,
  /** Something failed at run time (a check did not pass, a server refused). */
  failure: 1,
  /** The command line was wrong. */
  usage: 2,
  /** Configuration or scenario is missing or invalid. */
  config: 3,
  /** A port, host or peer could not be reached or bound. */
  unavailable: 4,
  /** The mailbox's grant needs someone to sign in (again): run `mailbridge login`. */
  needsSignIn: 5,
  /** The token store cannot be used as it is (another key, a damaged record). */
  store: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code of each error code (the table of docs/cli.md, "Errors"). */
export const EXIT_FOR_CODE: Readonly<Record<ErrorCode, ExitCode>> = {
  timeout: EXIT.unavailable,
  unreachable: EXIT.unavailable,
  closed: EXIT.unavailable,
  tls: EXIT.unavailable,
  unavailable: EXIT.unavailable,
  throttled: EXIT.unavailable,
  auth_rejected: EXIT.failure,
  auth_disabled: EXIT.failure,
  not_connected: EXIT.failure,
  server: EXIT.failure,
  rejected: EXIT.failure,
  protocol: EXIT.failure,
  line_too_long: EXIT.failure,
  literal_too_large: EXIT.failure,
  needs_sign_in: EXIT.needsSignIn,
  not_configured: EXIT.config,
  broken_configuration: EXIT.config,
  config_invalid: EXIT.config,
  exists: EXIT.config,
  usage: EXIT.usage,
  cancelled: EXIT.failure,
  cannot_decrypt: EXIT.store,
  key_unreadable: EXIT.store,
  corrupt_record: EXIT.store,
  store_unavailable: EXIT.store,
  id_taken: EXIT.store,
  name_taken: EXIT.failure,
  invalid_record: EXIT.failure,
  unknown_message: EXIT.failure,
  stale_message: EXIT.failure,
  unsupported: EXIT.failure,
  checkpoint_mismatch: EXIT.failure,
  not_done: EXIT.failure,
};

/** The exit code for a failure: from its code for mailbridge's own errors, 1 (failure) for anything else. */
export function exitCodeFor(err: unknown): ExitCode {
  if (!(err instanceof MailbridgeError)) return EXIT.failure;
  const code = (err as MailbridgeError).code;
  return Object.hasOwn(EXIT_FOR_CODE, code) ? EXIT_FOR_CODE[code] : EXIT.failure;
}
