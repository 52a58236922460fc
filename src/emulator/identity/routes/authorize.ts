// /authorize, the sign-in, consent and device verification pages, admin consent and logout.
import type { FastifyInstance } from 'fastify';
import type { IdentityState } from '../state.ts';

export function registerAuthorizeRoutes(_app: FastifyInstance, _state: IdentityState): void {
  // Written next.
}
