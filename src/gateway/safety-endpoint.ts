/** `/v1/safety`: operators' consoles, fed a snapshot and then every alert change. */
import type { SafetyLink, Tracker } from '../actors/api.js';
import { CloseCode, Role, type SafetyMessage } from '../protocol.js';
import { validateSafetyMessage } from './messages.js';
import {
  closeConnection,
  type EndpointBehaviour,
  type EndpointDeps,
  NOT_ATTACHED,
  sendMessage,
} from './socket-endpoint.js';

/**
 * The safety endpoint's behaviour. One operator (token `sub`) may hold at most
 * SAFETY_MAX_CONNECTIONS_PER_OPERATOR consoles on this node, so that one token cannot
 * take every connection slot; the next is closed with 4004 before it gets a snapshot.
 */
export function safetyEndpoint(tracker: Tracker, deps: EndpointDeps): EndpointBehaviour<SafetyMessage> {
  const perOperator = new Map<string, number>();
  const max = deps.config.SAFETY_MAX_CONNECTIONS_PER_OPERATOR;
  return {
    path: '/v1/safety',
    roles: [Role.safety],
    validate: validateSafetyMessage,
    handle: (principal, msg) => tracker.onSafetyMessage(principal.sub, msg),
    attach(ws) {
      const operator = ws.getUserData().principal.sub;
      const held = perOperator.get(operator) ?? 0;
      if (held >= max) {
        deps.log.warn({ sub: operator, held }, 'console refused: operator connection limit');
        closeConnection(
          ws,
          CloseCode.operatorConnectionLimit,
          `operator already has ${max} console connections on this node`,
        );
        return NOT_ATTACHED;
      }
      perOperator.set(operator, held + 1);
      // Alert pushes are the same object for every console: encode once (sendMessage's shared path).
      const link: SafetyLink = { push: (msg) => sendMessage(ws, msg, deps, msg.t === 'alert') };
      tracker.attachSafety(operator, link);
      return {
        detach: () => {
          const left = (perOperator.get(operator) ?? 1) - 1;
          if (left > 0) perOperator.set(operator, left);
          else perOperator.delete(operator);
          tracker.detachSafety(link);
        },
      };
    },
  };
}
