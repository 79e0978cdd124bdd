/**
 * `/readyz`'s answer, from the health of each component (PROTOCOL.md: 200 when the archive
 * and shared state are reachable, 503 otherwise with a JSON body naming what is down).
 *
 * The body also says, per component, what its state means for this node's own devices,
 * and sums it up in `devices`: `served`, `degraded` (a Redis outage: the node acks its
 * devices from its journal alone; a full spool or journal reserve: pings are refused, SOS
 * still served) or `refused` (the journal cannot store, or the node is shutting down). A
 * load balancer that routes devices asks `/readyz?for=devices`, which answers 503 only
 * when `devices` is `refused`: during a Redis outage every node is 503 on plain `/readyz`,
 * and draining on that would take every device off every node at once (README).
 */
import type { ComponentHealth, DeviceService } from '../outcome.js';

/** What `/readyz` answers. */
export interface ReadyAnswer {
  status: number;
  json: {
    ok: boolean;
    down: string[];
    components: Record<string, ComponentHealth>;
    devices: { state: DeviceService; served: boolean };
  };
}

const WORSE: Record<DeviceService, number> = { served: 0, degraded: 1, refused: 2 };

/** The answer for `components`; `scope` is the `for` query parameter (`devices`, or null). */
export function readyAnswer(
  components: Record<string, ComponentHealth>,
  shuttingDown: boolean,
  scope: string | null,
): ReadyAnswer {
  const all: Record<string, ComponentHealth> = { ...components };
  if (shuttingDown) all.gateway = { ok: false, detail: 'shutting down', devices: 'refused' };
  const down = Object.entries(all)
    .filter(([, health]) => !health.ok)
    .map(([name]) => name);
  let state: DeviceService = 'served';
  for (const h of Object.values(all)) {
    const s: DeviceService = h.ok ? 'served' : (h.devices ?? 'refused');
    if (WORSE[s] > WORSE[state]) state = s;
  }
  const ready = scope === 'devices' ? state !== 'refused' : down.length === 0;
  return {
    status: ready ? 200 : 503,
    json: { ok: down.length === 0, down, components: all, devices: { state, served: state !== 'refused' } },
  };
}
