/** `/v1/device`: a technician's phone, acting only as its token's `sub`. */
import type { DeviceLink, Tracker } from '../actors/api.js';
import { CloseCode, type DeviceMessage, Role } from '../protocol.js';
import type { AppPresence } from './app-presence.js';
import { validateDeviceMessage } from './messages.js';
import {
  type Connection,
  closeConnection,
  type EndpointBehaviour,
  type EndpointDeps,
  sendMessage,
} from './socket-endpoint.js';
import { timeWindow } from './time-window.js';
import type { WebSocket } from './uws.js';

/**
 * The device endpoint's behaviour: one live connection per technician; a newer one replaces
 * the older (4003). An open socket also takes precedence over a tracker app's presence.
 */
export function deviceEndpoint(
  tracker: Tracker,
  deps: EndpointDeps,
  presence?: AppPresence,
): EndpointBehaviour<DeviceMessage> {
  const current = new Map<string, WebSocket<Connection>>();
  return {
    path: '/v1/device',
    roles: [Role.device],
    // The window moves with the clock: taken per message, it is a little arithmetic.
    validate: (frame, now) => validateDeviceMessage(frame, timeWindow(now, deps.config.RETENTION_DAYS)),
    pointsOf: (msg) => (msg.t === 'batch' ? msg.pts.length : 0),
    // Device messages carry no technician id: every one acts as the token's subject.
    handle: (principal, msg) => tracker.onDeviceMessage(principal.sub, msg),
    attach(ws) {
      const tech = ws.getUserData().principal.sub;
      const previous = current.get(tech);
      if (previous !== undefined) closeConnection(previous, CloseCode.replaced, 'replaced by a newer connection');
      current.set(tech, ws);
      presence?.socketAttached(tech);
      const link: DeviceLink = {
        push: (msg) => sendMessage(ws, msg, deps),
        moveOn: () => closeConnection(ws, CloseCode.goingAway, 'technician runs on another node: reconnect'),
      };
      tracker.attachDevice(tech, link);
      return () => {
        if (current.get(tech) === ws) {
          current.delete(tech);
          presence?.socketDetached(tech);
        }
        tracker.detachDevice(tech, link);
      };
    },
  };
}
