/**
 * The alert list: a keyboard-operable listbox (Tab reaches it, arrows, Home and End move
 * the selection, which follows focus), one row per alert keyed by id so that the
 * once-a-second refresh of ages and countdowns updates text in place instead of
 * rebuilding rows under the operator's focus.
 */
import type { Alert } from '../../protocol.js';
import { el } from './dom.js';
import { age, escalation, KIND_LABELS, type Timings } from './model.js';

interface Row {
  node: HTMLDivElement;
  kind: HTMLSpanElement;
  level: HTMLSpanElement;
  tech: HTMLSpanElement;
  order: HTMLSpanElement;
  age: HTMLSpanElement;
  esc: HTMLSpanElement;
}

/** Renders alerts into `#alerts` and reports the operator's selection. */
export class AlertList {
  private readonly rows = new Map<string, Row>();
  private order: string[] = [];
  private selectedId: string | undefined;

  constructor(
    private readonly list: HTMLElement,
    private readonly empty: HTMLElement,
    private readonly onSelect: (id: string | undefined) => void,
  ) {
    list.addEventListener('keydown', (event) => this.onKey(event));
    list.addEventListener('click', (event) => {
      const row = (event.target as Element).closest<HTMLElement>('[role="option"][data-id]');
      if (row?.dataset.id !== undefined) this.select(row.dataset.id, true);
    });
  }

  get selected(): string | undefined {
    return this.selectedId;
  }

  /** Shows `alerts` (already in list order) as of `now` (server time). */
  render(alerts: readonly Alert[], timings: Timings, now: number): void {
    const ids = new Set(alerts.map((a) => a.id));
    for (const [id, row] of this.rows) {
      if (!ids.has(id)) {
        row.node.remove();
        this.rows.delete(id);
      }
    }
    for (const alert of alerts) this.update(this.rows.get(alert.id) ?? this.create(alert.id), alert, timings, now);

    const order = alerts.map((a) => a.id);
    if (order.join('\n') !== this.order.join('\n')) {
      const focused = document.activeElement;
      for (const id of order) this.list.append(this.rows.get(id)!.node);
      // Moving a node blurs it; give focus back so arrow keys keep working.
      if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus();
      this.order = order;
    }
    this.empty.hidden = alerts.length > 0;

    if (this.selectedId !== undefined && !ids.has(this.selectedId)) {
      // The selected alert was resolved: move to the top one (or nothing), focus only if the list had it.
      const hadFocus = this.list.contains(document.activeElement) || document.activeElement === document.body;
      this.select(order[0], hadFocus && order.length > 0);
    } else if (this.selectedId === undefined && order.length > 0) {
      this.select(order[0], false);
    } else {
      this.markSelection();
    }
  }

  /** Selects `id` (undefined: nothing); `focus` moves keyboard focus to its row. */
  select(id: string | undefined, focus: boolean): void {
    const changed = id !== this.selectedId;
    this.selectedId = id;
    this.markSelection();
    if (focus && id !== undefined) this.rows.get(id)?.node.focus();
    if (changed) this.onSelect(id);
  }

  private markSelection(): void {
    const tabStop = this.selectedId ?? this.order[0];
    for (const [id, row] of this.rows) {
      row.node.setAttribute('aria-selected', String(id === this.selectedId));
      row.node.tabIndex = id === tabStop ? 0 : -1; // roving tabindex: one Tab stop for the whole list
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (this.order.length === 0) return;
    const at = this.selectedId === undefined ? -1 : this.order.indexOf(this.selectedId);
    let next: number;
    switch (event.key) {
      case 'ArrowDown':
        next = Math.min(at + 1, this.order.length - 1);
        break;
      case 'ArrowUp':
        next = Math.max(at - 1, 0);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = this.order.length - 1;
        break;
      default:
        return;
    }
    event.preventDefault();
    this.select(this.order[next], true);
  }

  private create(id: string): Row {
    const node = el('div', 'alert');
    node.setAttribute('role', 'option');
    node.dataset.id = id;
    node.tabIndex = -1;
    const row: Row = {
      node,
      kind: el('span', 'kind'),
      level: el('span', 'level'),
      tech: el('span', 'tech'),
      order: el('span', 'order'),
      age: el('span', 'age'),
      esc: el('span', 'esc'),
    };
    node.append(row.kind, row.level, row.tech, row.order, row.age, row.esc);
    this.rows.set(id, row);
    return row;
  }

  private update(row: Row, alert: Alert, timings: Timings, now: number): void {
    const sos = alert.kind === 'sos';
    row.node.className = `alert ${alert.state}${sos ? ' sos' : ''}`;
    row.node.dataset.kind = alert.kind;
    row.node.dataset.state = alert.state;
    const label = KIND_LABELS[alert.kind] ?? alert.kind;
    if (sos) {
      if (row.kind.firstElementChild === null) row.kind.replaceChildren(el('span', 'badge', label));
    } else if (row.kind.textContent !== label) {
      row.kind.textContent = label;
    }
    row.level.textContent = String(alert.level);
    row.tech.textContent = alert.tech;
    row.order.textContent = alert.order ?? '—';
    row.order.classList.toggle('muted', alert.order === undefined);
    row.age.textContent = age(now - alert.ts);
    const esc = escalation(alert, timings, now);
    row.esc.textContent = esc.label;
    row.esc.dataset.tone = esc.tone;
    // A stable name: ages and countdowns tick every second, and a screen reader would
    // re-announce a focused row whose name keeps changing (the detail panel has them).
    row.node.setAttribute(
      'aria-label',
      `${label}, level ${alert.level}, ${alert.state}, technician ${alert.tech}${alert.order ? `, order ${alert.order}` : ''}`,
    );
  }
}
