// SMTP submission for mailbridge: nodemailer with tokens from the provider.
export {
  createSmtpTransport,
  sendMessage,
  SmtpError,
  type OutgoingMessage,
  type SmtpContext,
  type SmtpErrorCode,
  type SmtpOptions,
  type SmtpTransport,
} from './send.ts';
