// What every mail connection of mailbridge shares: TLS settings (certificates always verified,
// TLS 1.2 or later, a cloud's extra CA trusted beside the system's) and the scrubbing of secrets
// out of any text that may reach a person or a log.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { rootCertificates, type ConnectionOptions } from 'node:tls';
import type { MailEndpoint } from '../config/clouds.ts';

/** TLS settings for a mail endpoint: verified certificates, the cloud's extra CA trusted. */
export async function mailTlsOptions(endpoint: MailEndpoint, caFile: string | undefined): Promise<ConnectionOptions> {
  const options: ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
  if (caFile) options.ca = [...rootCertificates, await readFile(caFile, 'utf8')];
  if (!isIP(endpoint.host)) options.servername = endpoint.host;
  return options;
}

/** Removes secrets wherever they appear in a text (a server echoing one, a library quoting one). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join('[token]');
  return out;
}
