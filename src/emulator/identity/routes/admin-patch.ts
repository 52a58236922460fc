// PATCH bodies of the admin API: checked against the schema, then only the fields the body names
// are applied. Parsing alone is not enough: a schema's defaults fill in every field left out, and
// applying those would reset them (a PATCH of one setting used to reset all the others).

/** The fields of `parsed` that the request body itself names. */
export function namedFields<T extends object>(parsed: T, body: unknown): Partial<T> {
  const named = body !== null && typeof body === 'object' ? body : {};
  return Object.fromEntries(Object.entries(parsed).filter(([name]) => Object.hasOwn(named, name))) as Partial<T>;
}
