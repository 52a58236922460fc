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
} as const;
