// SMTP submission through nodemailer, fed by the token provider: the cloud's SMTP endpoint
// (STARTTLS required on 587, or implicit TLS on 465; certificates verified, the cloud's caFile
// trusted besides the system's CAs), AUTH XOAUTH2 with a token the provider hands out for every
// connection (nodemailer's provisionCallback; nodemailer keeps none of its own).
//
// A refused token is refreshed once: nodemailer itself calls provisionCallback(user, renew=true)
// when a server answers XOAUTH2 with a 334 challenge (Dovecot/Postfix, Gmail); Exchange answers
// 535 at once, so sendMessage does the one invalidate-and-retry itself. Failures become an
// SmtpError with the server's reply; no token ever appears in an error.
import nodemailer, { type SendMailOptions, type SMTPSentMessageInfo, type SMTPTransportOptions, type Transporter } from 'nodemailer';
import type { MailEndpoint } from '../config/clouds.ts';
import { MailbridgeError } from '../errors.ts';
import { mailTlsOptions, scrub } from '../net/mail-tls.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveGrant } from '../identity/grants.ts';
import type { TokenProvider } from '../identity/token-provider.ts';

export interface SmtpContext {
  loaded: LoadedConfig;
  provider: TokenProvider;
}

export interface SmtpOptions {
  /** Limit for connecting, the greeting and each reply (default 30 s). */
  timeoutMs?: number;
  /** Pause before the second attempt after a refused token (default 250 ms). */
  retryPauseMs?: number;
}

export type SmtpTransport = Transporter<SMTPSentMessageInfo, SMTPTransportOptions>;

export type SmtpErrorCode =
  /** The server refused the token, also a freshly refreshed one (535 5.7.3, 535 5.7.8 ...). */
  | 'auth_rejected'
  /** Exchange refuses SMTP AUTH itself: disabled for the tenant or the mailbox, security defaults (535 5.7.139). */
  | 'auth_disabled'
  /** The server refused the sender, a recipient or the message (e.g. 550 5.7.60 SendAsDenied). */
  | 'rejected'
  /** The server asked to slow down (Exchange: 4.3.2 limits, "throttled"). */
  | 'throttled'
  | 'tls'
  /** No TCP connection (refused, unknown host), or it dropped. */
  | 'unreachable'
  | 'timeout'
  | 'protocol';

export class SmtpError extends MailbridgeError<SmtpErrorCode> {
  readonly mailbox: string;
  readonly host: string;
  readonly port: number;
  /** The server's reply, e.g. `535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. ...`. */
  readonly response?: string;
  readonly responseCode?: number;
  /** The SMTP command the reply answered (`AUTH XOAUTH2`, `RCPT TO`, ...). */
  readonly command?: string;
  constructor(
    code: SmtpErrorCode,
    mailbox: string,
    endpoint: MailEndpoint,
    message: string,
    extra: { response?: string; responseCode?: number; command?: string; cause?: unknown } = {},
  ) {
    super(code, message, extra.cause === undefined ? {} : { cause: extra.cause });
    this.name = 'SmtpError';
    this.mailbox = mailbox;
    this.host = endpoint.host;
    this.port = endpoint.port;
    if (extra.response !== undefined) this.response = extra.response;
    if (extra.responseCode !== undefined) this.responseCode = extra.responseCode;
    if (extra.command !== undefined) this.command = extra.command;
  }
}

export interface OutgoingMessage {
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  text?: string;
  /** A complete RFC 5322 message, sent as it is (the envelope comes from from/to/cc/bcc). */
  raw?: Buffer | string;
  /** Default: the mailbox's address. */
  from?: string;
}

/** What one transport saw of its tokens, for errors and the retry decision. */
interface TransportState {
  /** Every token handed to nodemailer (scrubbed from error texts). */
  tokens: string[];
  /** nodemailer already asked for a renewed token after a refusal. */
  renewed: boolean;
  /** The provider's own error, kept whole (nodemailer would overwrite its code with EAUTH). */
  tokenError?: Error;
}

async function buildTransport(ctx: SmtpContext, mailbox: string, options: SmtpOptions, state: TransportState): Promise<SmtpTransport> {
  const grant = resolveGrant(ctx.loaded, mailbox);
  const endpoint = grant.cloud.smtp;
  const address = grant.address;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const provision = async (renew: boolean): Promise<string> => {
    if (renew) {
      state.renewed = true;
      ctx.provider.invalidate(address, 'smtp', state.tokens.at(-1));
    }
    const token = await ctx.provider.getAccessToken(address, 'smtp');
    state.tokens.push(token);
    return token;
  };
  return nodemailer.createTransport({
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.security === 'implicit',
    requireTLS: endpoint.security === 'starttls',
    tls: await mailTlsOptions(endpoint, grant.cloud.caFile),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    auth: {
      type: 'OAuth2',
      user: address,
      provisionCallback: (_user: string, renew: boolean, callback: (err: Error | null, accessToken?: string, expires?: number) => void) => {
        provision(renew).then(
          // expires = 1 (long past): nodemailer asks again for every connection; the provider is the cache.
          (token) => callback(null, token, 1),
          (err: unknown) => {
            const error = err instanceof Error ? err : new Error(String(err));
            state.tokenError = error;
            callback(new Error(error.message));
          },
        );
      },
    },
  });
}

/**
 * A nodemailer transport for the mailbox's SMTP endpoint, authenticating with tokens from the
 * provider. Its sendMail errors are nodemailer's own (token-free); sendMessage names them.
 */
export async function createSmtpTransport(ctx: SmtpContext, mailbox: string, options: SmtpOptions = {}): Promise<SmtpTransport> {
  return buildTransport(ctx, mailbox, options, { tokens: [], renewed: false });
}

interface NodemailerFailure {
  code?: string;
  message?: string;
  response?: string;
  responseCode?: number;
  command?: string;
}

/** A nodemailer failure as an SmtpError (or the provider's TokenError, unchanged). */
function named(err: unknown, address: string, endpoint: MailEndpoint, state: TransportState): Error {
  if (state.tokenError !== undefined) return state.tokenError;
  const e = (err ?? {}) as NodemailerFailure;
  const where = `${endpoint.host}:${endpoint.port}`;
  const response = typeof e.response === 'string' ? scrub(e.response, state.tokens) : undefined;
  const detail = scrub(e.message ?? String(err), state.tokens);
  const extra = {
    ...(response !== undefined ? { response } : {}),
    ...(typeof e.responseCode === 'number' ? { responseCode: e.responseCode } : {}),
    ...(typeof e.command === 'string' ? { command: e.command } : {}),
  };
  const make = (code: SmtpErrorCode, text: string) => new SmtpError(code, address, endpoint, `${address}: ${text}`, extra);
  const reply = response ?? detail;
  if (e.code === 'EAUTH' && response !== undefined) {
    if (/^535[ -]5\.7\.139\b/.test(response)) return make('auth_disabled', `${where} refuses SMTP AUTH for this mailbox: ${response}`);
    return make('auth_rejected', `${where} refused the access token: ${response}`);
  }
  if (response !== undefined && (/^4\d\d[ -]4\.3\.2\b/.test(response) || /throttl/i.test(response)))
    return make('throttled', `${where} throttles this mailbox: ${response}`);
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE') return make('rejected', `${where} refused the message: ${reply}`);
  if (e.code === 'ETLS' || /CERT|SIGNATURE|SSL|ALTNAME/.test(e.code ?? '') || /certificate/i.test(detail))
    return make('tls', `TLS with ${where} failed: ${detail}`);
  if (e.code === 'ETIMEDOUT') return make('timeout', `${where} did not answer in time (${detail})`);
  if (e.code === 'ECONNECTION' || e.code === 'ESOCKET' || e.code === 'EDNS') return make('unreachable', `cannot talk to ${where}: ${detail}`);
  return make('protocol', `SMTP with ${where} failed: ${detail}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends one message from the mailbox. Errors: TokenError from the provider, SmtpError for
 * everything the server or the connection did.
 */
export async function sendMessage(ctx: SmtpContext, mailbox: string, message: OutgoingMessage, options: SmtpOptions = {}): Promise<SMTPSentMessageInfo> {
  const grant = resolveGrant(ctx.loaded, mailbox);
  const endpoint = grant.cloud.smtp;
  const from = message.from ?? grant.address;
  const mail: SendMailOptions =
    message.raw !== undefined
      ? { envelope: { from, to: [...message.to, ...(message.cc ?? []), ...(message.bcc ?? [])] }, raw: message.raw }
      : {
          from,
          to: message.to,
          ...(message.cc ? { cc: message.cc } : {}),
          ...(message.bcc ? { bcc: message.bcc } : {}),
          ...(message.subject !== undefined ? { subject: message.subject } : {}),
          text: message.text ?? '',
        };
  for (let attempt = 0; ; attempt++) {
    const state: TransportState = { tokens: [], renewed: false };
    const transport = await buildTransport(ctx, grant.address, options, state);
    try {
      return await transport.sendMail(mail);
    } catch (err) {
      const error = named(err, grant.address, endpoint, state);
      // Nothing was sent before AUTH: a second try cannot duplicate the message.
      const retry = error instanceof SmtpError && error.code === 'auth_rejected' && !state.renewed && attempt === 0;
      if (!retry) {
        if (error instanceof SmtpError && error.code === 'auth_rejected' && (attempt > 0 || state.renewed)) {
          throw new SmtpError(
            'auth_rejected',
            error.mailbox,
            endpoint,
            `${error.message}, also a freshly refreshed one: check the grant's scopes or roles and the mailbox permission (\`mailbridge verify ${grant.address}\` names the cause)`,
            {
              ...(error.response !== undefined ? { response: error.response } : {}),
              ...(error.responseCode !== undefined ? { responseCode: error.responseCode } : {}),
              ...(error.command !== undefined ? { command: error.command } : {}),
            },
          );
        }
        throw error;
      }
      ctx.provider.invalidate(grant.address, 'smtp', state.tokens.at(-1));
      await sleep(options.retryPauseMs ?? 250);
    } finally {
      transport.close();
    }
  }
}
