// After login the proxy only moves bytes: client to server and back, nothing parsed. Each
// direction is a pipe, so a slow reader on one side stops reading from the other (bounded
// memory), TCP_NODELAY keeps small replies from waiting, and when either side ends or fails the
// other is ended after what was already read has been written.
import type { Socket } from 'node:net';
import { reusableReadsOf } from '../net/reusable-reads.ts';

/** After a client's half-close, how long the server may stay silent before it is told too. */
const HALF_CLOSE_QUIET_MS = 2000;

export interface RelayResult {
  /** Bytes from the client to the server (after login). */
  bytesFromClient: number;
  /** Bytes from the server to the client (after login). */
  bytesToClient: number;
  /** Who ended the session first. */
  endedBy: 'client' | 'server' | 'error' | 'stopped';
}

export interface Relay {
  done: Promise<RelayResult>;
  /** Ends both sides at once (shutdown after its grace period, idle timeout). */
  stop(): void;
}

/**
 * Relays between `client` and `server`. `clientEarly` is what the client already sent after its
 * login command; `serverEarly` what the server sent after its login answer: each goes first.
 */
export function relay(client: Socket, clientEarly: Buffer, server: Socket, serverEarly: Buffer): Relay {
  let bytesFromClient = clientEarly.length;
  let bytesToClient = serverEarly.length;
  let endedBy: RelayResult['endedBy'] | undefined;
  const first = (who: RelayResult['endedBy']) => {
    endedBy ??= who;
  };
  client.setNoDelay(true);
  server.setNoDelay(true);
  if (clientEarly.length > 0) server.write(clientEarly);
  if (serverEarly.length > 0) client.write(serverEarly);
  // A client that half-closes (a script: commands, then shutdown) still gets every answer: the
  // server, which may not handle a half-close itself, is only told once it has gone quiet.
  forward(
    client,
    server,
    (n) => (bytesFromClient += n),
    () => server.setTimeout(HALF_CLOSE_QUIET_MS, () => server.end()),
  );
  forward(
    server,
    client,
    (n) => (bytesToClient += n),
    () => client.end(),
  );

  const done = new Promise<RelayResult>((resolve) => {
    let open = 2;
    const closed = () => {
      open--;
      if (open === 0) resolve({ bytesFromClient, bytesToClient, endedBy: endedBy ?? 'client' });
    };
    client.once('end', () => first('client'));
    server.once('end', () => first('server'));
    client.once('error', () => {
      first('error');
      server.destroy();
    });
    server.once('error', () => {
      first('error');
      client.destroy();
    });
    // A side that closed without ending cleanly (a reset) takes the other with it.
    client.once('close', () => {
      first('client');
      if (!server.destroyed) server.end();
      closed();
    });
    server.once('close', () => {
      first('server');
      if (!client.destroyed) client.end();
      closed();
    });
  });
  return {
    done,
    stop: () => {
      first('stopped');
      client.destroy();
      server.destroy();
    },
  };
}

/**
 * from.pipe(to), except that what `from` yields in one turn of the event loop leaves in one write:
 * a TLS socket yields each record on its own (Dovecot's are 4 KiB), and a write per record costs
 * a system call, a TCP segment and a wake-up of the reader each. A socket opened with reusable
 * reads (the upstream's) hands over its buffers, each given back once written.
 */
function forward(from: Socket, to: Socket, counted: (bytes: number) => void, onEnd: () => void): void {
  let corked = false;
  const flush = () => {
    corked = false;
    to.uncork();
  };
  /** Writes `chunk`; false when `to` is full and `from` should wait for its 'drain'. */
  const pass = (chunk: Buffer, written?: () => void): boolean => {
    counted(chunk.length);
    // Ended or destroyed: nothing more can reach that side (pipe() would have unpiped).
    if (!to.writable) {
      written?.();
      return true;
    }
    if (!corked) {
      corked = true;
      to.cork();
      setImmediate(flush);
    }
    return to.write(chunk, written);
  };
  to.on('drain', () => from.resume());
  from.once('end', onEnd);
  const reads = reusableReadsOf(from);
  if (reads) {
    // Returning false pauses `from` (its reads stop) until the 'drain' above.
    reads.handOver((chunk, release) => pass(chunk, release));
  } else {
    from.on('data', (chunk: Buffer) => {
      if (!pass(chunk)) from.pause();
    });
  }
  from.resume();
}
