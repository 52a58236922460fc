// Hostile input for protocol servers: a seeded PRNG (so a failure can be replayed) and
// mutations of valid command lines: byte flips, truncation, NULs, huge numbers, long lines.

export type Rand = () => number;

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): Rand {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(rand: Rand, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomBytes(rand: Rand, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/**
 * One hostile line (without its line ending): a valid line mutated, or random bytes. Line
 * feeds inside are replaced, so each call is exactly one line on the wire.
 */
export function mutatedLine(rand: Rand, valid: readonly string[], longLine: number): Buffer {
  const base = Buffer.from(pick(rand, valid), 'latin1');
  const r = rand();
  let out: Buffer;
  if (r < 0.15) out = randomBytes(rand, Math.floor(rand() * 80));
  else if (r < 0.3) out = base.subarray(0, Math.floor(rand() * base.length));
  else if (r < 0.45) {
    out = Buffer.from(base);
    for (let i = 0; i < 1 + rand() * 3 && out.length > 0; i++) out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
  } else if (r < 0.55) out = Buffer.concat([base, Buffer.from(' '), Buffer.from(String(Math.floor(rand() * 1e15)))]);
  else if (r < 0.62) out = Buffer.concat([base, Buffer.from([0]), randomBytes(rand, 5)]);
  else if (r < 0.64) out = Buffer.alloc(longLine + Math.floor(rand() * 1000), 'A');
  else if (r < 0.75) out = Buffer.concat([base, Buffer.from(' '), base]);
  else out = base;
  for (let i = 0; i < out.length; i++) if (out[i] === 10 || out[i] === 13) out[i] = 32;
  return out;
}
