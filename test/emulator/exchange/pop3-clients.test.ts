// Real POP3 clients, with emulator-issued tokens, read mail from the emulated Exchange POP3 server
// and get exactly the bytes the mailbox holds: curl (falls back to XOAUTH2, as Exchange offers no
// OAUTHBEARER) and Python's poplib.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const run = promisify(execFile);
const RAW =
  'From: Fabrikam <news@fabrikam.example>\r\nTo: <alice@contoso.com>\r\nSubject: Quarterly report\r\nMessage-ID: <q1@fabrikam.example>\r\n\r\nHello Alice,\r\n.a line with a leading dot\r\n\r\nRegards\r\n';

describe('real POP3 clients against the emulated Exchange', () => {
  let emu: TestEmulator;
  let ca: string;
  let token: string;
  before(async () => {
    emu = await startTestEmulator();
    ca = join(emu.dataDir, 'ca.crt');
    await emu.admin('POST', '/mailboxes/alice@contoso.com/messages', { raw: RAW });
    token = await userToken(emu, 'alice@contoso.com', [SCOPES.pop]);
  });
  after(() => emu.close());

  it('curl retrieves the message over pop3s with --oauth2-bearer (XOAUTH2)', async () => {
    const { stdout, stderr } = await run(
      'curl',
      ['-sS', '-v', '--cacert', ca, '--oauth2-bearer', token, '-u', 'alice@contoso.com:', `pop3s://127.0.0.1:${emu.running.mailPorts.pop3s}/1`],
      { encoding: 'latin1' },
    );
    assert.equal(stdout, RAW);
    assert.match(stderr, /> AUTH XOAUTH2\r?\n/);
    assert.ok(!stderr.includes('OAUTHBEARER'));
  });

  it('curl lists over plain POP3 upgraded with STLS', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--ssl-reqd',
      '--cacert',
      ca,
      '--oauth2-bearer',
      token,
      '-u',
      'alice@contoso.com:',
      `pop3://127.0.0.1:${emu.running.mailPorts.pop3}/`,
    ]);
    assert.equal(stdout, `1 ${Buffer.byteLength(RAW)}\r\n`);
  });

  it("Python's poplib logs in with the two-step AUTH XOAUTH2 and retrieves the message", async () => {
    const script = `
import base64, os, poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
p = poplib.POP3_SSL('127.0.0.1', int(sys.argv[2]), context=ctx)
p._shortcmd('AUTH XOAUTH2')
sasl = base64.b64encode(('user=alice@contoso.com\\x01auth=Bearer ' + os.environ['MB_TOKEN'] + '\\x01\\x01').encode()).decode()
sys.stdout.buffer.write(p._shortcmd(sasl) + b'\\n')
count, size = p.stat()
resp, lines, octets = p.retr(1)
sys.stdout.buffer.write(b'\\r\\n'.join(lines) + b'\\r\\n')
p.quit()
`;
    const { stdout } = await run('python3', ['-c', script, ca, String(emu.running.mailPorts.pop3s)], {
      encoding: 'latin1',
      env: { ...process.env, MB_TOKEN: token },
    });
    const [first, ...rest] = stdout.split('\n');
    assert.equal(first, '+OK User successfully authenticated.');
    assert.equal(rest.join('\n'), RAW);
  });
});
