// The plain command lines that run without commander (`mailbridge token`, `mailbridge proxy run`):
// known options, each at most once, `--name value` or `--name=value` for options with a value,
// bare switches, and up to a given number of positional arguments. Anything else (help, a typo,
// a repeated or unknown option, `--`, a switch given a value) is not plain: commander parses it,
// so its messages and exit codes stay the same.

export interface PlainArgsSpec<V extends string, S extends string> {
  /** Options that take a value (without the leading `--`). */
  values: readonly V[];
  /** Options without a value. */
  switches: readonly S[];
  /** How many positional arguments there may be. */
  positionals: number;
}

export interface PlainArgs<V extends string, S extends string> {
  positionals: string[];
  values: Partial<Record<V, string>>;
  switches: Partial<Record<S, true>>;
}

export function plainArgs<V extends string, S extends string>(args: readonly string[], spec: PlainArgsSpec<V, S>): PlainArgs<V, S> | undefined {
  const parsed: PlainArgs<V, S> = { positionals: [], values: {}, switches: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      if (parsed.positionals.length === spec.positionals) return undefined;
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq < 0 ? arg : arg.slice(0, eq)).slice(2);
    if (!arg.startsWith('--')) return undefined;
    if ((spec.switches as readonly string[]).includes(name)) {
      if (eq >= 0 || parsed.switches[name as S]) return undefined;
      parsed.switches[name as S] = true;
      continue;
    }
    if (!(spec.values as readonly string[]).includes(name) || parsed.values[name as V] !== undefined) return undefined;
    const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || (eq < 0 && value.startsWith('-'))) return undefined;
    parsed.values[name as V] = value;
  }
  return parsed;
}
