// Exchange Online's POP3 front end. Written next.
import type { RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';

export interface Pop3ServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STARTTLS offered. */
  implicitTls: boolean;
}

export async function startPop3Server(_context: ExchangeContext, _options: Pop3ServerOptions): Promise<RunningLineServer> {
  throw new Error('not written yet');
}
