// Memory a test can bound: the JavaScript heap plus Buffers, after garbage collection, so that
// garbage not yet collected (and pages the allocator keeps) is not mistaken for growth.
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

export function settledMemoryBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
