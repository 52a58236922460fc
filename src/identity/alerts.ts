// The alert hook: on every change of a grant's status, run the configured command (with the
// change in environment variables) and/or POST it as JSON to the configured URL. Failures of the
// hook are reported, never thrown: an alert must not break token delivery.
import type { GrantStatus } from '../store/token-store.ts';

export interface StatusChange {
  mailbox: string;
  from: GrantStatus;
  to: GrantStatus;
  /** Plain-language reason and, where there is one, the AADSTS code. */
  reason?: string;
  aadsts?: number;
  fix?: string;
  at: string;
}

export interface AlertConfig {
  command?: string;
  url?: string;
}

async function runCommand(command: string, change: StatusChange, timeoutMs: number): Promise<string | undefined> {
  // Loaded when an alert runs: `mailbridge token` with a cached token never needs child_process.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: 'ignore',
      env: {
        ...process.env,
        MAILBRIDGE_MAILBOX: change.mailbox,
        MAILBRIDGE_STATUS: change.to,
        MAILBRIDGE_PREVIOUS_STATUS: change.from,
        MAILBRIDGE_REASON: change.reason ?? '',
        MAILBRIDGE_AADSTS: change.aadsts === undefined ? '' : String(change.aadsts),
        MAILBRIDGE_FIX: change.fix ?? '',
      },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(`the alert command could not start: ${err.message}`);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? undefined : `the alert command exited with ${code}`);
    });
  });
}

async function post(url: string, change: StatusChange, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(change),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return res.ok ? undefined : `the alert URL answered HTTP ${res.status}`;
  } catch (err) {
    return `the alert URL could not be reached: ${(err as Error).message}`;
  }
}

/** Sends a status change to the configured hooks; returns the problems, if any. */
export async function sendAlert(config: AlertConfig, change: StatusChange, timeoutMs = 10_000): Promise<string[]> {
  const results = await Promise.all([
    config.command ? runCommand(config.command, change, timeoutMs) : undefined,
    config.url ? post(config.url, change, timeoutMs) : undefined,
  ]);
  return results.filter((r): r is string => r !== undefined);
}
