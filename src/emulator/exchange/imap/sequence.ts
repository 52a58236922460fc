// Sequence sets (RFC 3501 section 9: `1,3:5,7:*`), kept as ranges and never expanded, so that
// `1:4294967295` costs no more than `1`. Resolution against a session's sorted UID list is a
// binary search per range.

export interface SeqRange {
  /** Inclusive bounds; `Infinity` stands for `*`. Always low <= high after parsing. */
  low: number;
  high: number;
}

const NUMBER = /^[1-9]\d{0,9}$/;
const MAX = 4294967295;

function part(text: string): number | undefined {
  if (text === '*') return Infinity;
  if (!NUMBER.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX ? n : undefined;
}

/** Parses a sequence set; undefined when it is not one (Exchange: "The specified message set is invalid."). */
export function parseSequenceSet(text: string): SeqRange[] | undefined {
  if (text.length === 0 || text.length > 100_000) return undefined;
  const ranges: SeqRange[] = [];
  for (const item of text.split(',')) {
    const colon = item.indexOf(':');
    if (colon < 0) {
      const n = part(item);
      if (n === undefined) return undefined;
      ranges.push({ low: n, high: n });
      continue;
    }
    const a = part(item.slice(0, colon));
    const b = part(item.slice(colon + 1));
    if (a === undefined || b === undefined) return undefined;
    ranges.push(a <= b ? { low: a, high: b } : { low: b, high: a });
  }
  return ranges;
}

/** First index in sorted `values` whose value is >= `x`. */
export function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of `x` in sorted `values`, or -1. */
export function indexOfSorted(values: readonly number[], x: number): number {
  const i = lowerBound(values, x);
  return i < values.length && values[i] === x ? i : -1;
}

/**
 * Message indexes (0-based, ascending, no duplicates) that a set names. With `uid`, numbers are
 * UIDs looked up in `uids`; otherwise sequence numbers. `outOfRange` tells whether a sequence
 * number beyond the mailbox was named (UIDs that do not exist are simply skipped, as RFC 3501
 * says; `n:*` always includes the last message).
 */
export function resolveSet(ranges: readonly SeqRange[], uids: readonly number[], uid: boolean): { indexes: number[]; outOfRange: boolean } {
  const count = uids.length;
  let outOfRange = false;
  const spans: [number, number][] = [];
  for (const r of ranges) {
    if (uid) {
      if (count === 0) continue;
      const maxUid = uids[count - 1]!;
      let low = r.low === Infinity ? maxUid : r.low;
      let high = r.high === Infinity ? maxUid : r.high;
      if (low > high) [low, high] = [high, low];
      const from = lowerBound(uids, low);
      const to = lowerBound(uids, high + 1) - 1;
      if (from <= to) spans.push([from, to]);
    } else {
      if (count === 0) {
        outOfRange = true;
        continue;
      }
      let low = r.low === Infinity ? count : r.low;
      let high = r.high === Infinity ? count : r.high;
      if (low > high) [low, high] = [high, low];
      if (high > count) outOfRange = true;
      const from = low - 1;
      const to = Math.min(high, count) - 1;
      if (from <= to) spans.push([from, to]);
    }
  }
  if (spans.length === 1) {
    const [a, b] = spans[0]!;
    const out = new Array<number>(b - a + 1);
    for (let i = a; i <= b; i++) out[i - a] = i;
    return { indexes: out, outOfRange };
  }
  spans.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  let last = -1;
  for (const [a, b] of spans) {
    for (let i = Math.max(a, last + 1); i <= b; i++) out.push(i);
    last = Math.max(last, b);
  }
  return { indexes: out, outOfRange };
}

/** Compact form of a UID list for COPYUID/APPENDUID (`1:3,7`), in ascending order. */
export function formatUidSet(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i]!;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) end = sorted[++i]!;
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}
