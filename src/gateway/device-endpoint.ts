/** `/v1/device`: a technician's phone, acting only as its token's `sub`. */
import type { DeviceLink, Tracker } from '../actors/api.js';
import { CloseCode, type DeviceMessage, type DevicePush, Role } from '../protocol.js';
import type { AppPresence } from './app-presence.js';
import { validateDeviceMessage } from './messages.js';
import {
  type Attachment,
  type Connection,
  closeConnection,
  type EndpointBehaviour,
  type EndpointDeps,
  sendMessage,
} from './socket-endpoint.js';
import { timeWindow } from './time-window.js';
import type { WebSocket } from './uws.js';

/** What every device socket of the endpoint shares. */
interface DeviceSockets {
  readonly tracker: Tracker;
  readonly deps: EndpointDeps;
  readonly presence: AppPresence | undefined;
  /** The open socket of each technician connected here. */
  readonly current: Map<string, WebSocket<Connection>>;
}

/**
 * One device socket as the tracker sees it (its `DeviceLink`) and as the endpoint undoes
 * it on close: one small object per connected device, its methods on the prototype.
 */
class DeviceSocket implements DeviceLink, Attachment {
  constructor(
    private readonly ws: WebSocket<Connection>,
    private readonly tech: string,
    private readonly sockets: DeviceSockets,
  ) {}

  push(msg: DevicePush): void {
    sendMessage(this.ws, msg, this.sockets.deps);
  }

  moveOn(): void {
    closeConnection(this.ws, CloseCode.goingAway, 'technician runs on another node: reconnect');
  }

  detach(): void {
    const { current, presence, tracker } = this.sockets;
    if (current.get(this.tech) === this.ws) {
      current.delete(this.tech);
      presence?.socketDetached(this.tech);
    }
    tracker.detachDevice(this.tech, this);
  }
}

/**
 * The device endpoint's behaviour: one live connection per technician; a newer one replaces
 * the older (4003). An open socket also takes precedence over a tracker app's presence.
 */
export function deviceEndpoint(
  tracker: Tracker,
  deps: EndpointDeps,
  presence?: AppPresence,
): EndpointBehaviour<DeviceMessage> {
  const sockets: DeviceSockets = { tracker, deps, presence, current: new Map() };
  const { current } = sockets;
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
      const socket = new DeviceSocket(ws, tech, sockets);
      tracker.attachDevice(tech, socket);
      return socket;
    },
  };
}
