// POP3 through mailbridge's own client (src/pop3): TCP, TLS (implicit on 995, STLS on 110) and
// greeting, CAPA, the two-step AUTH XOAUTH2 Exchange requires, then STAT and UIDL, QUIT
// (reference section 8.4). Exchange refuses a POP login outright where IMAP would say
// "authenticated but not connected", so the refusal is read together with what the token says.
import { Pop3Client, Pop3Error } from '../pop3/index.ts';
import { causes } from './causes.ts';
import { describeTls, tlsFacts } from '../net/connection.ts';
import { dnsAndTcp, endpointLabel, loginAccepted, loginRefused, notConnected, tokenStep, unexpected, type ProbeInput } from './probe.ts';
import { Steps } from './steps.ts';
import type { ProtocolReport, StepName } from './types.ts';

const LOGIN_REFUSED = /authentication failure|logon failure|unknown user name or bad password/i;

function replyOf(err: unknown): string {
  if (err instanceof Pop3Error) return err.reply ?? err.message;
  return (err as Error).message;
}

function certificateFacts(client: Pop3Client): string {
  return describeTls(tlsFacts(client.tlsProtocol, client.peerCertificate));
}

export async function probePop(p: ProbeInput): Promise<ProtocolReport> {
  const { host, port, security } = p.endpoint;
  const steps = new Steps(endpointLabel(p.endpoint));

  // The client opens its own connection; this one only proves the port answers.
  const socket = await dnsAndTcp(steps, p);
  if (!socket) return steps.report();
  socket.destroy();

  // TLS and the greeting (and for STLS, CAPA and STLS) are one call of the client.
  let client: Pop3Client;
  try {
    client = await Pop3Client.connect({ host, port, security, ...(p.caPem ? { ca: p.caPem } : {}), timeoutMs: p.timeoutMs });
  } catch (err) {
    const e = err instanceof Pop3Error ? err : undefined;
    const code = ((e?.cause as NodeJS.ErrnoException | undefined)?.code ?? e?.code ?? 'error').toString();
    if (e?.code === 'tls' || (e?.code === 'timeout' && security === 'implicit')) {
      const hint = /SELF_SIGNED|UNABLE_TO|CERT_UNTRUSTED|CERT_SIGNATURE/.test(code)
        ? 'trust'
        : /ALTNAME|HOSTNAME/.test(code)
          ? 'name'
          : /EXPIRED|NOT_YET/.test(code)
            ? 'expired'
            : 'other';
      steps.fail('tls', replyOf(err), causes.tls(host, port, (err as Error).message, code, hint));
    } else if (e?.code === 'unreachable') {
      steps.fail('tcp', (err as Error).message, causes.tcp(host, port, code));
    } else {
      steps.fail('greeting', replyOf(err), unexpected(p, 'greeting', replyOf(err)));
    }
    return steps.report();
  }

  let step: StepName = 'capabilities';
  try {
    if (security === 'implicit') steps.pass('tls', certificateFacts(client));
    steps.pass('greeting', client.greeting);
    if (security === 'starttls') steps.pass('tls', `STLS; ${certificateFacts(client)}`);

    steps.begin();
    const caps = await client.capabilities();
    if (!caps.sasl.includes('XOAUTH2')) {
      const text = `no SASL XOAUTH2 in: ${caps.raw.join(', ') || '(no CAPA)'}`;
      steps.fail('capabilities', text, unexpected(p, 'capabilities', text));
      await quit(steps, p, client);
      return steps.report();
    }
    steps.pass('capabilities', caps.raw.join(', '));

    const token = await tokenStep(steps, p);
    if (token === undefined) {
      await quit(steps, p, client);
      return steps.report();
    }

    step = 'login';
    steps.begin();
    try {
      const ok = await client.authXoauth2(p.mailbox, token);
      loginAccepted(p);
      steps.pass('login', ok);
    } catch (err) {
      if (!(err instanceof Pop3Error) || err.fatal) throw err;
      const reply = replyOf(err);
      steps.fail('login', reply, LOGIN_REFUSED.test(reply) ? await loginRefused(p, reply, token) : unexpected(p, 'login', reply));
      await quit(steps, p, client);
      return steps.report();
    }

    step = 'mailbox';
    steps.begin();
    try {
      const stat = await client.stat();
      const ids = await client.uidl();
      steps.pass('mailbox', `STAT: ${stat.count} messages, ${stat.octets} octets; UIDL: ${ids.length} ids`);
    } catch (err) {
      if (!(err instanceof Pop3Error)) throw err;
      const reply = replyOf(err);
      steps.fail('mailbox', reply, /authenticated but not connected/i.test(reply) ? notConnected(p, reply) : unexpected(p, 'mailbox', reply));
      if (!err.fatal) await quit(steps, p, client);
      return steps.report();
    }

    step = 'logout';
    await quit(steps, p, client, true);
    return steps.report();
  } catch (err) {
    const text = err instanceof Pop3Error ? (err.reply ? `${err.message} (${err.reply})` : err.message) : (err as Error).message;
    steps.fail(step, text, unexpected(p, step, text));
    return steps.report();
  } finally {
    client.close();
  }
}

async function quit(steps: Steps, p: ProbeInput, client: Pop3Client, strict = false): Promise<void> {
  steps.begin();
  try {
    await client.quit();
    steps.pass('logout', 'QUIT: +OK');
  } catch (err) {
    if (!(err instanceof Pop3Error)) throw err;
    if (strict) steps.fail('logout', replyOf(err), unexpected(p, 'logout', replyOf(err)));
  }
}
