// The two SASL mechanisms legacy clients log in with (PLAIN, RFC 4616; LOGIN, the old
// draft-murchison-sasl-login), decoded strictly: a malformed response is an error reply, never a
// guess.

/** Text of a strict base64 string (no whitespace, right padding), or undefined. */
export function decodeBase64(text: string): string | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64').toString('utf8');
}

export function encodeBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export interface PlainCredentials {
  /** Who to act as: a shared mailbox, or '' for the login name itself. */
  authzid: string;
  authcid: string;
  password: string;
}

/** `authzid NUL authcid NUL password`, base64: the PLAIN response. */
export function decodePlain(response: string): PlainCredentials | undefined {
  const text = decodeBase64(response);
  if (text === undefined) return undefined;
  const parts = text.split('\0');
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return undefined;
  return { authzid: parts[0]!, authcid: parts[1]!, password: parts[2]! };
}

/** The mailbox a PLAIN login asks for: the authorization identity when given, else the login name. */
export function plainMailbox(c: PlainCredentials): string {
  return c.authzid !== '' ? c.authzid : c.authcid;
}

/** The LOGIN mechanism's two prompts, base64 of "Username:" and "Password:". */
export const LOGIN_PROMPTS = { username: encodeBase64('Username:'), password: encodeBase64('Password:') } as const;

/**
 * Asks for one SASL response with `prompt` (base64): the line, or undefined when the client
 * cancelled or the exchange failed (already answered), or null when the client left.
 */
export type AskResponse = (prompt: string) => Promise<string | undefined | null>;

/**
 * The mailbox and password of an AUTH PLAIN or AUTH LOGIN exchange, with the initial response
 * when the client sent one; 'malformed' for a response that does not decode; undefined/null as
 * from `ask`.
 */
export async function saslCredentials(
  mechanism: 'PLAIN' | 'LOGIN',
  initial: string | undefined,
  ask: AskResponse,
): Promise<{ mailbox: string; password: string } | 'malformed' | undefined | null> {
  if (mechanism === 'PLAIN') {
    const answer = initial ?? (await ask(''));
    if (answer === null || answer === undefined) return answer;
    const credentials = decodePlain(answer === '=' ? '' : answer);
    return credentials ? { mailbox: plainMailbox(credentials), password: credentials.password } : 'malformed';
  }
  const first = initial ?? (await ask(LOGIN_PROMPTS.username));
  if (first === null || first === undefined) return first;
  const second = await ask(LOGIN_PROMPTS.password);
  if (second === null || second === undefined) return second;
  const mailbox = decodeBase64(first);
  const password = decodeBase64(second);
  return mailbox && password ? { mailbox, password } : 'malformed';
}
