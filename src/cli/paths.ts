// Where mailbridge keeps its files when not told otherwise (XDG base directories).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataHome(): string {
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'share'), 'mailbridge');
}
