// The second probe of `verify`: does the cloud's IMAP server accept an app-only token's login?
// POP3 and SMTP refuse a token the same way whether Exchange Online does not know the app (no
// service principal) or the app has no permission on the mailbox; IMAP tells the two apart (it
// refuses an unknown app at AUTHENTICATE but accepts the login of a known one and refuses only the
// mailbox). Nothing of this run enters the report except the answer.
import type { MailEndpoint } from '../config/clouds.ts';
import { encodeXoauth2 } from '../net/sasl-xoauth2.ts';
import { ImapProbeSession, capabilitiesOf } from './imap-probe.ts';
import { THROTTLED, open, upgrade, type ProbeInput } from './probe.ts';
import { Steps } from './steps.ts';

/** True: IMAP accepted the login; false: it refused it (NO); undefined: no answer that tells. */
export async function imapAcceptsToken(p: ProbeInput, endpoint: MailEndpoint, token: string): Promise<boolean | undefined> {
  const scratch = new Steps('');
  const probe: ProbeInput = { ...p, protocol: 'imap', endpoint };
  const conn = await open(scratch, probe);
  if (!conn) return undefined;
  const imap = new ImapProbeSession(conn);
  try {
    if (!/^\* OK\b/i.test(await imap.response())) return undefined;
    if (endpoint.security === 'starttls') {
      const started = await imap.command('STARTTLS');
      if (started.status !== 'OK' || !(await upgrade(scratch, probe, conn, started.line))) return undefined;
    }
    const upper = capabilitiesOf((await imap.command('CAPABILITY')).untagged).map((c) => c.toUpperCase());
    if (!upper.includes('AUTH=XOAUTH2')) return undefined;
    const sasl = encodeXoauth2(p.mailbox, token);
    const auth = upper.includes('SASL-IR')
      ? await imap.command(`AUTHENTICATE XOAUTH2 ${sasl}`)
      : await imap.command('AUTHENTICATE XOAUTH2', (line) => (line.trim() === '+' ? sasl : ''));
    await imap.command('LOGOUT').catch(() => undefined);
    if (auth.status === 'OK') return true;
    return auth.status === 'NO' && !THROTTLED.test(auth.line) ? false : undefined;
  } catch {
    // A connection that closed or went silent: this probe cannot tell.
    return undefined;
  } finally {
    conn.close();
  }
}
