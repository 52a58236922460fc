// Exchange Online's IMAP front end. Written next.
import type { RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';

export interface ImapServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STARTTLS offered. */
  implicitTls: boolean;
}

export async function startImapServer(_context: ExchangeContext, _options: ImapServerOptions): Promise<RunningLineServer> {
  throw new Error('not written yet');
}
