// Option texts and parsers the commands share, so that every command says the same thing.

/** The help of every `--config <file>` option: where the configuration is read from without one. */
export const CONFIG_HELP = 'configuration file (default: $MAILBRIDGE_CONFIG or ~/.config/mailbridge/config.json)';
