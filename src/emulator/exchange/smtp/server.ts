// Exchange Online's SMTP front end. Written next.
import type { RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';

export interface SmtpServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STARTTLS offered. */
  implicitTls: boolean;
}

export async function startSmtpServer(_context: ExchangeContext, _options: SmtpServerOptions): Promise<RunningLineServer> {
  throw new Error('not written yet');
}
