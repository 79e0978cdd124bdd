/**
 * Batches outgoing frames per socket for one event-loop turn.
 *
 * Acks resolve outside uWS callbacks (after the group-committed fsync), so sending each
 * one on its own costs one write syscall per ack: the profile showed that send path as
 * the gateway's largest cost. Queued frames are written in one corked burst per socket
 * on the next turn instead, which is one syscall for all of a socket's answers of that
 * turn. Order per socket is kept; closing a socket writes its queue first.
 *
 * Safety traffic does not wait for that turn (`writeNow`): under overload a turn is the
 * fix lane's slice plus everything uWS read meanwhile, and an SOS reaching consoles, or an
 * operator's ack reaching the technician, would wait one more of them per hop.
 */
import type { WebSocket } from './uws.js';

/** The part of a socket's user data the outbox uses. */
export interface HasOutbox {
  outbox?: Buffer[];
}

const dirty = new Set<WebSocket<HasOutbox>>();
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  const sockets = [...dirty];
  dirty.clear();
  for (const ws of sockets) {
    try {
      writeQueued(ws);
    } catch {
      // A socket uWS has already closed cannot be written to; its frames are moot. It must
      // not keep the other sockets' frames (a console's snapshot, a device's ack) unsent.
    }
  }
}

function writeQueued(ws: WebSocket<HasOutbox>): void {
  const data = ws.getUserData();
  const frames = data.outbox;
  data.outbox = undefined;
  if (frames === undefined) return;
  ws.cork(() => {
    for (const frame of frames) ws.send(frame, true);
  });
}

/** Queues `frame` for `ws`; it is written on the next event-loop turn. */
export function queueFrame(ws: WebSocket<HasOutbox>, frame: Buffer): void {
  const data = ws.getUserData();
  if (data.outbox === undefined) {
    data.outbox = [frame];
    dirty.add(ws);
  } else data.outbox.push(frame);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

/** Writes `frame` now, after what is already queued for `ws` (safety traffic; see the module comment). */
export function writeNow(ws: WebSocket<HasOutbox>, frame: Buffer): void {
  const queued = dirty.delete(ws) ? ws.getUserData().outbox : undefined;
  ws.getUserData().outbox = undefined;
  ws.cork(() => {
    if (queued !== undefined) for (const f of queued) ws.send(f, true);
    ws.send(frame, true);
  });
}

/** Writes what is queued for `ws` now (before the server closes it). */
export function flushOutbox(ws: WebSocket<HasOutbox>): void {
  if (!dirty.delete(ws)) return;
  writeQueued(ws);
}

/** Drops what is queued for a socket that is already closed (it can no longer be written to). */
export function discardOutbox(ws: WebSocket<HasOutbox>): void {
  if (dirty.delete(ws)) ws.getUserData().outbox = undefined;
}
