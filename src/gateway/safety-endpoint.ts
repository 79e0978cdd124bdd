/** `/v1/safety`: operators' consoles, fed a snapshot and then every alert change. */
import type { SafetyLink, Tracker } from '../actors/api.js';
import { Role, type SafetyMessage } from '../protocol.js';
import { validateSafetyMessage } from './messages.js';
import { type EndpointBehaviour, type EndpointDeps, sendMessage } from './socket-endpoint.js';

/** The safety endpoint's behaviour. */
export function safetyEndpoint(tracker: Tracker, deps: EndpointDeps): EndpointBehaviour<SafetyMessage> {
  return {
    path: '/v1/safety',
    roles: [Role.safety],
    validate: validateSafetyMessage,
    handle: (principal, msg) => tracker.onSafetyMessage(principal.sub, msg),
    attach(ws) {
      // Alert pushes are the same object for every console: encode once (sendMessage's shared path).
      const link: SafetyLink = { push: (msg) => sendMessage(ws, msg, deps, msg.t === 'alert') };
      tracker.attachSafety(ws.getUserData().principal.sub, link);
      return () => tracker.detachSafety(link);
    },
  };
}
