// The store backends mailbridge has. Kept apart from schema.ts (zod) so that the code opening the
// stores can name them without loading the schema. A PostgreSQL store adds 'postgres' here, a
// member to the schema's union and a backend to src/store/open-stores.ts.
export const STORE_KINDS = ['sqlite'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export function isStoreKind(kind: unknown): kind is StoreKind {
  return (STORE_KINDS as readonly unknown[]).includes(kind);
}

/** The one wording of a store kind this version does not have, for the schema and for open-stores. */
export function unknownStoreKindMessage(kind: unknown): string {
  const known = STORE_KINDS.map((k) => `"${k}"`).join(', ');
  return typeof kind === 'string'
    ? `"${kind}" is not a store this version of mailbridge has; the built-in kinds are ${known}`
    : `give the kind of store, one of ${known}`;
}
