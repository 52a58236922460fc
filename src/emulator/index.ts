// `mailbridge/emulator`: Microsoft's identity platform and Exchange Online's POP3, IMAP and SMTP,
// on loopback with their own CA, to test a mail integration offline (docs/emulator.md).
//
//   const emulator = await startEmulator();
//   await emulator.admin.mailboxes.deliver('support@contoso.com', 'Subject: hi\r\n\r\nhello\r\n');
//   await emulator.admin.clock.advance(7200); // every token issued so far has expired
//   await emulator.close();
export { startEmulator, type Emulator, type EmulatorCloud, type EmulatorExampleConfig, type EmulatorUrls, type StartEmulatorOptions } from './instance.ts';
export {
  EmulatorAdmin,
  EmulatorAdminError,
  type ArmedMailFailure,
  type EmulatorClockState,
  type EmulatorCounters,
  type EmulatorFolder,
  type EmulatorScenario,
  type IdentityFailureInput,
  type MailFailureInput,
  type MessageMeta,
} from './admin-client.ts';
export type { ArmedFailure } from './identity/state.ts';
export type { MailServiceName } from './start.ts';
export type { ScenarioInput } from './scenario/schema.ts';
