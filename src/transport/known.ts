// The one reading of KnownIds, shared by the sources.
import type { KnownIds } from './types.ts';

/** True when `id` is in `known` (a set or a question). */
export function isKnown(known: KnownIds | undefined, id: string): boolean {
  if (known === undefined) return false;
  return typeof known === 'function' ? known(id) : known.has(id);
}
