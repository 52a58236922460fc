// The configuration's fixed vocabularies, apart from the zod schema (schema.ts) so that code
// which only needs a name list (`mailbridge token --protocol`) does not load zod.

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const PROTOCOLS = ['imap', 'pop', 'smtp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const GRANTS = ['authorization_code', 'device_code', 'client_credentials'] as const;
export type GrantType = (typeof GRANTS)[number];
