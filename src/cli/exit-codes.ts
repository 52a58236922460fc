// Exit codes of every mailbridge command (documented in docs/cli.md).
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
