// Exchange Online's SMTP submission front end (smtp.office365.com:587, reference 8.5): plain with
// STARTTLS (or implicit TLS when asked), XOAUTH2 after TLS only, delivery into the emulator's
// mailboxes. Host names come from the run's backend name (see names.ts); limits from the
// scenario's mail settings, read when the server starts.
import { startLineServer, type LineSession, type RunningLineServer } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';
import { SmtpNames } from './names.ts';
import { SmtpSession, type SmtpLimits } from './session.ts';

export type { SmtpLimits } from './session.ts';

export interface SmtpServerOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte; otherwise plain with STARTTLS offered. */
  implicitTls: boolean;
  /** Overrides of the limits taken from the scenario (tests use small ones). */
  limits?: Partial<SmtpLimits>;
}

/** Exchange's receive connectors close a connection after this many protocol errors (MaxProtocolErrors). */
const MAX_PROTOCOL_ERRORS = 5;
/** Exchange Online: at most 500 recipients per message. */
const MAX_RECIPIENTS = 500;

export async function startSmtpServer(context: ExchangeContext, options: SmtpServerOptions): Promise<RunningLineServer> {
  const settings = context.settings;
  const limits: SmtpLimits = {
    maxLineBytes: settings.maxLineBytes,
    maxMessageBytes: settings.maxMessageBytes,
    idleTimeoutMs: settings.idleTimeoutSeconds * 1000,
    maxProtocolErrors: MAX_PROTOCOL_ERRORS,
    maxRecipients: MAX_RECIPIENTS,
    ...options.limits,
  };
  const names = new SmtpNames(context.backendHost, context.identity.clock.nowMs());
  const sessions = new WeakMap<LineSession, SmtpSession>();
  return startLineServer(
    {
      host: options.host,
      port: options.port,
      ...(options.implicitTls ? { implicitTls: context.tls } : {}),
      maxLineBytes: limits.maxLineBytes,
      // Exchange ends lines (and DATA) only at CRLF; a bare LF is data (no SMTP smuggling).
      crlfOnly: true,
      idleTimeoutMs: limits.idleTimeoutMs,
    },
    (session) => {
      const smtp = new SmtpSession(context, session, names, limits);
      sessions.set(session, smtp);
      return smtp.run();
    },
    async (session) => {
      const smtp = sessions.get(session);
      if (smtp) await session.write(smtp.idleReply());
    },
  );
}
