/**
 * The selected alert in full: what happened, when, its escalation, the technician's own
 * note, who is nearest, and the Acknowledge and Resolve buttons with an optional note.
 */
import { type Alert, NOTE_MAX_LENGTH } from '../../protocol.js';
import { byId, el, timeOfDay } from './dom.js';
import { age, escalation, KIND_LABELS, type Timings } from './model.js';
import { formatDistance } from './projection.js';
import type { MapScene } from './scene.js';

/** The detail panel's elements. */
export class DetailView {
  readonly ack = byId<HTMLButtonElement>('ack');
  readonly resolve = byId<HTMLButtonElement>('resolve');
  readonly note = byId<HTMLTextAreaElement>('note');
  private readonly title = byId<HTMLHeadingElement>('detail-title');
  private readonly state = byId<HTMLSpanElement>('detail-state');
  private readonly facts = byId<HTMLDListElement>('detail-facts');
  private readonly result = byId<HTMLParagraphElement>('action-result');
  private busy = false;

  constructor() {
    // The protocol's limit, so a note the server would refuse cannot be typed.
    this.note.maxLength = NOTE_MAX_LENGTH;
  }

  /**
   * Shows `alert` (or nothing) as of `now` (server time); `scene` adds position facts when
   * loaded. The buttons work only while `live`: a request cannot reach a closed connection.
   */
  render(alert: Alert | undefined, timings: Timings, now: number, scene: MapScene | undefined, live: boolean): void {
    if (alert === undefined) {
      this.title.textContent = 'No alert selected';
      this.state.textContent = '';
      this.facts.replaceChildren();
      this.ack.disabled = true;
      this.resolve.disabled = true;
      return;
    }
    this.title.textContent = `${KIND_LABELS[alert.kind] ?? alert.kind} · ${alert.tech}`;
    this.state.textContent = alert.state;
    this.state.dataset.state = alert.state;
    this.ack.disabled = this.busy || !live || alert.state !== 'open';
    this.resolve.disabled = this.busy || !live;

    const rows: Array<[string, string]> = [
      ['Raised', `${timeOfDay(alert.ts)} (${age(now - alert.ts)} ago)`],
      ['Level', String(alert.level)],
    ];
    if (alert.kind === 'sos') rows.push(['Escalation', escalation(alert, timings, now).label]);
    if (alert.order !== undefined) rows.push(['Order', alert.order]);
    const detail = alert.detail ?? {};
    if (typeof detail.note === 'string') rows.push(["Technician's note", detail.note]);
    if (typeof detail.presses === 'number' && detail.presses > 1) {
      const last = typeof detail.lastPressAt === 'number' ? `, last ${timeOfDay(detail.lastPressAt)}` : '';
      rows.push(['Pressed', `${detail.presses} times${last}`]);
    }
    if (Array.isArray(detail.pressNotes) && detail.pressNotes.length > 0) {
      rows.push(['Latest notes', detail.pressNotes.filter((n) => typeof n === 'string').join(' / ')]);
    }
    if (typeof detail.speed === 'number') rows.push(['Implied speed', `${Math.round(detail.speed)} m/s`]);
    if (typeof detail.clearedAt === 'number') rows.push(['Back online', timeOfDay(detail.clearedAt)]);
    if (typeof detail.ackedBy === 'string' && typeof detail.ackedAt === 'number') {
      rows.push(['Acknowledged', `${timeOfDay(detail.ackedAt)} by ${detail.ackedBy}`]);
    }
    if (detail.slaBreached === true) rows.push(['SLA', 'breached']);
    if (scene?.tech?.live && scene.tech.ts !== undefined) {
      rows.push(['Last fix', `${age(now - scene.tech.ts)} ago, ${scene.tech.online ? 'online' : 'offline'}`]);
    } else if (alert.lat !== undefined && alert.lon !== undefined) {
      rows.push(['Position', `${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}`]);
    }
    if (scene !== undefined && scene.techId === alert.tech) {
      rows.push([
        'Nearest online',
        scene.nearby.length === 0
          ? 'none online nearby'
          : scene.nearby
              .slice(0, 2)
              .map((t) => `${t.id} (${formatDistance(t.dist)})`)
              .join(', '),
      ]);
    }
    this.facts.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', undefined, k), el('dd', undefined, v)]));
  }

  /** Disables both buttons while a request is in flight, so one click sends one request. */
  setBusy(busy: boolean): void {
    this.busy = busy;
    if (busy) {
      this.ack.disabled = true;
      this.resolve.disabled = true;
    }
  }

  /** Says how the last action went. */
  report(ok: boolean, text: string): void {
    this.result.dataset.ok = String(ok);
    this.result.textContent = text;
  }

  clearReport(): void {
    this.result.textContent = '';
    delete this.result.dataset.ok;
  }
}
