// Option texts and parsers the commands share, so that every command says the same thing.

/** The help of every `--config <file>` option: where the configuration is read from without one. */
export const CONFIG_HELP = 'configuration file (default: $MAILBRIDGE_CONFIG or ~/.config/mailbridge/config.json)';

/** The parser of a repeatable option that also takes a comma-separated list: `--x a,b --x c` gives [a, b, c]. */
export const collect = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean),
];
