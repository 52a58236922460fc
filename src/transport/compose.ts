// A message built from a few fields, as raw MIME for a MailSender: exactly what nodemailer's SMTP
// transport would have built from the same fields (same composer, CRLF line ends), so `mailbridge
// send --subject --body` sends the same message through the seam. Bcc recipients stay out of the
// header (the composer leaves them to the envelope). nodemailer is loaded only here, only when a
// message is composed.

export interface ComposeAttachment {
  filename: string;
  content: Buffer;
}

export interface ComposeFields {
  from: string;
  to: readonly string[];
  cc?: readonly string[];
  subject?: string;
  text?: string;
  /** An HTML alternative to `text`. */
  html?: string;
  attachments?: readonly ComposeAttachment[];
  /** The Message-ID this one answers: sets In-Reply-To and References. */
  inReplyTo?: string;
}

export async function composeMessage(fields: ComposeFields): Promise<Buffer> {
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await transport.sendMail({
    from: fields.from,
    to: [...fields.to],
    ...(fields.cc ? { cc: [...fields.cc] } : {}),
    ...(fields.subject !== undefined ? { subject: fields.subject } : {}),
    text: fields.text ?? '',
    ...(fields.html !== undefined ? { html: fields.html } : {}),
    ...(fields.attachments ? { attachments: fields.attachments.map((a) => ({ filename: a.filename, content: a.content })) } : {}),
    ...(fields.inReplyTo !== undefined ? { inReplyTo: fields.inReplyTo, references: [fields.inReplyTo] } : {}),
  });
  return info.message as Buffer;
}
