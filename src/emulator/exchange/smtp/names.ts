// The names Exchange Online's SMTP front end shows, derived from the run's backend name
// (context.backendHost, e.g. `SC1PR80CA0058.lamprd80.prod.outlook.com`):
// - the greeting and EHLO carry the front-end machine under `outlook.office365.com`
//   (`SC1PR80CA0058.outlook.office365.com`), as in `220 SY5P282CA0097.outlook.office365.com ...` [O];
// - the diagnostic tail of error replies carries the same machine under its region domain
//   (`[DS7PR03CA0257.namprd03.prod.outlook.com 2024-05-24T16:18:23.748Z 08DC7BA4204A987B]`) [O];
// - `[Hostname=...]` after DATA names a mailbox server of that region, upper case
//   (`[Hostname=SYBP282MB2635.AUSP282.PROD.OUTLOOK.COM]`) [O];
// - the 16-hex-digit session id looks like .NET ticks a few hours before the connection
//   (`08DE2A6028D26C22` on 23 Nov 2025 11:12 UTC) [O shape, C meaning]: one per connection, shown
//   in the greeting and in every diagnostic tail of that connection.
import { randomBytes, randomInt } from 'node:crypto';

/** .NET ticks (100 ns since 0001-01-01) of the Unix epoch. */
const EPOCH_TICKS = 621_355_968_000_000_000n;

export class SmtpNames {
  /** `SC1PR80CA0058.outlook.office365.com`: greeting, EHLO, Received. */
  readonly frontendHost: string;
  /** `SC1PR80CA0058.lamprd80.prod.outlook.com`: the diagnostic tail of error replies. */
  readonly diagnosticHost: string;
  /** `SC1PR80MB0058.LAMPRD80.PROD.OUTLOOK.COM`: `[Hostname=...]` after a message is accepted. */
  readonly mailboxHost: string;
  #nextId: bigint;

  constructor(backendHost: string, nowMs: number) {
    const [machine = 'SC1PR80CA0058', ...domain] = backendHost.split('.');
    const region = domain.length > 0 ? domain.join('.') : 'lamprd80.prod.outlook.com';
    this.frontendHost = `${machine}.outlook.office365.com`;
    this.diagnosticHost = `${machine}.${region}`;
    const mailboxMachine = /CA\d+$/.test(machine) ? machine.replace(/CA(\d+)$/, 'MB$1') : `${machine}MB`;
    this.mailboxHost = `${mailboxMachine}.${region}`.toUpperCase();
    // A few hours before now, like the ids real servers hand out.
    const hoursBefore = BigInt(randomInt(1, 6 * 3600)) * 10_000_000n;
    this.#nextId = BigInt(Math.floor(nowMs)) * 10_000n + EPOCH_TICKS - hoursBefore;
  }

  /** A fresh session id: 16 upper-case hex digits. */
  sessionId(): string {
    this.#nextId += BigInt(randomInt(1, 1 << 20));
    return this.#nextId.toString(16).toUpperCase().padStart(16, '0').slice(-16);
  }

  /** A Message-ID for a message that came without one, as Exchange makes them. */
  messageId(): string {
    const machine = this.mailboxHost.split('.')[0] ?? 'MB';
    return `<${machine}${randomBytes(8).toString('hex').toUpperCase()}@${this.mailboxHost}>`;
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date in UTC as Exchange writes it: `Sun, 3 Mar 2024 19:15:00 +0000` (no leading zero). */
export function rfc5322Date(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}
