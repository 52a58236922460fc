// The device code verification page (reference section 3): a person types the user code shown
// by the device, then signs in and consents through the same pages as /authorize; the device's
// polling at the token endpoint then succeeds (or is told the request was declined).
import type { FastifyInstance } from 'fastify';
import { AadError } from '../aad-error.ts';
import { findApp, resolveAuthority } from '../directory.ts';
import { FormParams } from '../form.ts';
import { formBody } from '../http.ts';
import { begin, errorPageOutcome, pageRoute, type Outcome, type Web } from '../interaction.ts';
import { deviceCodePage } from '../pages/device.ts';
import type { DeviceCodeRecord, IdentityState } from '../state.ts';

const ACTION = '/devicelogin';

const CODE_TEXT = {
  70018: "That code didn't work. Check the code and try again.",
  70019: 'That code has expired. Go back to your app or device and get a new code.',
  90120: 'That code was already used. Go back to your app or device and get a new code.',
} as const;

function normalise(code: string): string {
  return code.replace(/[\s-]/g, '').toUpperCase();
}

function findByUserCode(state: IdentityState, typed: string): DeviceCodeRecord | undefined {
  const wanted = normalise(typed);
  if (wanted === '') return undefined;
  for (const record of state.deviceCodes.values()) {
    if (normalise(record.userCode) === wanted) return record;
  }
  return undefined;
}

function codeError(code: keyof typeof CODE_TEXT, typed: string): Outcome {
  return {
    kind: 'page',
    status: 200,
    page: deviceCodePage({ action: ACTION, code: typed, error: { message: CODE_TEXT[code], detail: new AadError(code).message } }),
  };
}

async function enterCode(web: Web): Promise<Outcome> {
  const { state } = web;
  state.count('devicelogin');
  const form = formBody(web.request);
  const typed = (form.get('otc') ?? '').slice(0, 64);
  const record = findByUserCode(state, typed);
  if (!record) return codeError(70018, typed);
  if (state.clock.nowMs() > record.expiresAtMs) return codeError(70019, typed);
  if (record.status !== 'pending') return codeError(90120, typed);
  let authority;
  let app;
  try {
    authority = resolveAuthority(state.scenario, record.authoritySegment);
    app = findApp(state.scenario, record.clientId, authority);
  } catch (err) {
    if (err instanceof AadError) return errorPageOutcome(web, err);
    throw err;
  }
  return begin(web, {
    authority,
    clientId: app.clientId,
    target: { kind: 'device', deviceCode: record.deviceCode },
    permissions: record.permissions,
    directives: record.directives,
    defaults: [],
  });
}

export function registerDeviceLoginRoutes(app: FastifyInstance, state: IdentityState): void {
  app.get(
    ACTION,
    pageRoute(state, async (web) => {
      let code: string | undefined;
      try {
        code = FormParams.fromQuery(web.request.query).get('otc')?.slice(0, 64);
      } catch {
        code = undefined;
      }
      return { kind: 'page', status: 200, page: deviceCodePage({ action: ACTION, ...(code ? { code } : {}) }) };
    }),
  );
  app.post(ACTION, pageRoute(state, enterCode));
}
