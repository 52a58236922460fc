// Child process of retr-streaming.test.ts: retrieves one message with Pop3Client.retr into a file
// and reports how far its settled memory (JS heap + Buffers, after GC) rose meanwhile. Runs apart
// from the server so that only the client's memory is measured. Settings arrive over IPC (the
// token never on a command line).
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Pop3Client, type Pop3ConnectOptions } from '../../src/pop3/index.ts';
import { settledMemoryBytes } from '../helpers/memory.ts';

export interface ChildRequest {
  connect: Pop3ConnectOptions;
  user: string;
  token: string;
  n: number;
  file: string;
}

export interface ChildReport {
  bytes: number;
  baseline: number;
  peakGrowth: number;
  samples: number;
  peakRss: number;
  seconds: number;
}

const SAMPLE_EVERY = 4 * 1024 * 1024;

const request = await new Promise<ChildRequest>((resolve) => process.once('message', (m) => resolve(m as ChildRequest)));
const client = await Pop3Client.connect(request.connect);
await client.authXoauth2(request.user, request.token);
const baseline = settledMemoryBytes();
let peakGrowth = 0;
let samples = 0;
let peakRss = process.memoryUsage.rss();
let bytes = 0;
let nextSample = SAMPLE_EVERY;
const started = process.hrtime.bigint();
const meter = new Transform({
  transform(chunk: Buffer, _encoding, callback) {
    bytes += chunk.length;
    if (bytes >= nextSample) {
      nextSample += SAMPLE_EVERY;
      peakGrowth = Math.max(peakGrowth, settledMemoryBytes() - baseline);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      samples++;
    }
    callback(null, chunk);
  },
});
await pipeline(client.retr(request.n), meter, createWriteStream(request.file));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
peakGrowth = Math.max(peakGrowth, settledMemoryBytes() - baseline);
await client.quit();
const report: ChildReport = { bytes, baseline, peakGrowth, samples, peakRss, seconds };
process.send!(report, () => process.exit(0));
