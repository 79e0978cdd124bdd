/**
 * The safety console's entry point: sign-in, the live alert feed, the list, the detail
 * panel with its actions, the map and the alarm, wired together. State lives in one
 * AlertBoard fed by the connection; the views are redrawn from it on every change and
 * once a second for ages and countdowns.
 */
import type { Alert } from '../../protocol.js';
import { AlertList } from './alert-list.js';
import { Api, fetchPublicJson } from './api.js';
import { type LinkState, SafetyLink, type TokenVerdict } from './connection.js';
import { DetailView } from './detail-view.js';
import { byId } from './dom.js';
import { drawMap } from './map-view.js';
import { AlertBoard, type BoardChange, type ConsoleSettings, KIND_LABELS } from './model.js';
import { loadScene, type MapScene, trackWindowFor } from './scene.js';
import { Alarm } from './sound.js';
import type { TrackWindow } from './track-window.js';
import { type Codec, createCodec } from './wire.js';

/** sessionStorage only: the token dies with the tab and is never written to disk by us. */
const TOKEN_KEY = 'fieldtrack.console.token';
const MAP_REFRESH_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Asks the node whether `api`'s token may use /v1/safety (same verifier and role as the upgrade). */
async function checkToken(api: Api): Promise<TokenVerdict & { sub?: string }> {
  const res = await api.get<{ sub: string }>('/console/session');
  if (res.ok) return { kind: 'ok', sub: res.value.sub };
  if (res.status === 401 || res.status === 403) return { kind: 'refused', msg: res.msg };
  return { kind: 'unreachable', msg: res.msg };
}

class ConsoleApp {
  private readonly board = new AlertBoard();
  private readonly alarm = new Alarm();
  private readonly detail = new DetailView();
  private readonly list: AlertList;
  private readonly map = byId<SVGSVGElement>('map');
  private codec: Codec | undefined;
  private api: Api | undefined;
  private link: SafetyLink | undefined;
  private settings: (ConsoleSettings & { offsetMs: number }) | undefined;
  private linkState: LinkState | { kind: 'signed-out' } = { kind: 'signed-out' };
  /** Bumped on every sign-in and sign-out, so late async work of an old session is dropped. */
  private session = 0;
  private scene: MapScene | undefined;
  private sceneRequest = 0;
  /** The selected technician's recent track, kept between map refreshes. */
  private track: TrackWindow | undefined;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private mapTimer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    this.list = new AlertList(byId('alerts'), byId('alerts-empty'), () => this.selectionChanged());
    byId<HTMLFormElement>('signin-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.alarm.unlock(); // the sign-in click is the user gesture browsers want before audio
      const token = byId<HTMLTextAreaElement>('token').value.trim();
      if (token === '') this.showSignIn('Paste a safety token first.');
      else void this.begin(token);
    });
    byId('signout').addEventListener('click', () => this.showSignIn(''));
    byId('reconnect').addEventListener('click', () => this.link?.retryNow());
    const mute = byId<HTMLButtonElement>('mute');
    mute.addEventListener('click', () => {
      this.alarm.muted = !this.alarm.muted;
      // The label names the action; the amber look says, from across the room, that it is muted.
      mute.textContent = this.alarm.muted ? 'Unmute alarm' : 'Mute alarm';
      mute.classList.toggle('muted', this.alarm.muted);
    });
    this.detail.ack.addEventListener('click', () => void this.act('ack'));
    this.detail.resolve.addEventListener('click', () => void this.act('resolve'));
    // After a reload no sign-in click happened: the first key or click enables the alarm.
    for (const type of ['pointerdown', 'keydown'] as const) {
      document.addEventListener(type, () => this.alarm.unlock(), { capture: true });
    }
    new ResizeObserver(() => this.drawScene()).observe(this.map);
  }

  /** Starts on the sign-in form, or straight into the console when this tab signed in before. */
  init(): void {
    try {
      this.codec = createCodec();
    } catch (err) {
      this.showSignIn((err as Error).message);
      byId<HTMLButtonElement>('signin').disabled = true;
      return;
    }
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) void this.begin(saved);
    else this.showSignIn('');
  }

  private async begin(token: string): Promise<void> {
    const session = ++this.session;
    const api = new Api(token);
    const verdict = await checkToken(api);
    if (session !== this.session) return;
    if (verdict.kind === 'refused') {
      this.showSignIn(`Sign-in refused: ${verdict.msg}`);
      return;
    }
    // Unreachable is not a refusal: open the console and let it reconnect.
    sessionStorage.setItem(TOKEN_KEY, token);
    this.api = api;
    byId('operator').textContent = verdict.sub ? `Operator ${verdict.sub}` : '';
    byId('signin-view').hidden = true;
    byId('console-view').hidden = false;
    byId('session').hidden = false;
    byId<HTMLTextAreaElement>('token').value = '';
    this.renderAll();

    const settings = await this.loadSettings(session);
    if (settings === undefined) return;
    this.settings = settings;
    this.link = new SafetyLink({
      url: location.origin.replace(/^http/, 'ws'),
      token,
      codec: this.codec!,
      checkToken: () => checkToken(api),
      onState: (state) => this.stateChanged(state),
      onSnapshot: (alerts) => this.changed(this.board.replace(alerts)),
      onAlert: (alert) => this.changed(this.board.apply(alert), alert),
    });
    this.link.start();
    this.ticker = setInterval(() => this.renderAll(), 1000);
    this.mapTimer = setInterval(() => {
      if (this.linkState.kind === 'live') void this.refreshMap();
    }, MAP_REFRESH_MS);
  }

  /** The SOS timings and the clock offset, retried until the server answers. */
  private async loadSettings(session: number): Promise<(ConsoleSettings & { offsetMs: number }) | undefined> {
    for (let attempt = 0; session === this.session; attempt++) {
      const sent = Date.now();
      try {
        const cfg = await fetchPublicJson<ConsoleSettings>('/console/config.json');
        // Alert times are the server's: count ages and countdowns on its clock.
        return { ...cfg, offsetMs: cfg.serverTime - (sent + Date.now()) / 2 };
      } catch {
        const delay = Math.min(10_000, 500 * 2 ** attempt);
        this.stateChanged({ kind: 'retrying', at: Date.now() + delay, why: 'server unreachable' });
        await sleep(delay);
      }
    }
    return undefined;
  }

  /** Back to the sign-in form, forgetting the token; `error` says why (empty: a plain sign-out). */
  private showSignIn(error: string): void {
    this.session++;
    this.link?.stop();
    this.link = undefined;
    this.api = undefined;
    clearInterval(this.ticker);
    clearInterval(this.mapTimer);
    sessionStorage.removeItem(TOKEN_KEY);
    this.board.replace([]);
    this.scene = undefined;
    this.list.select(undefined, false);
    this.stateChanged({ kind: 'signed-out' });
    byId('console-view').hidden = true;
    byId('session').hidden = true;
    byId('signin-view').hidden = false;
    byId('signin-error').textContent = error;
    byId<HTMLTextAreaElement>('token').focus();
  }

  /** The server's clock as best known here, in whole milliseconds (the API takes integers). */
  private now(): number {
    return Math.round(Date.now() + (this.settings?.offsetMs ?? 0));
  }

  private stateChanged(state: LinkState | { kind: 'signed-out' }): void {
    const before = this.linkState;
    this.linkState = state;
    if (state.kind === 'stopped') {
      this.showSignIn(state.why);
      return;
    }
    const text: Record<typeof state.kind, string> = {
      'signed-out': 'Signed out',
      connecting: 'Connecting…',
      live: 'Live',
      retrying: 'Disconnected',
    };
    // Announce changes of kind or cause only; the countdown is not in the live region.
    const label = state.kind === 'retrying' ? `${text.retrying}: ${state.why}` : text[state.kind];
    const statusText = byId('status-text');
    if (statusText.textContent !== label) statusText.textContent = label;
    byId('status').dataset.kind = state.kind;
    byId('reconnect').hidden = state.kind !== 'retrying' || this.link === undefined;
    byId('console-view').classList.toggle('stale', state.kind !== 'live');
    this.renderAll();
    if (state.kind === 'live' && before.kind !== 'live') void this.refreshMap();
  }

  private renderRetry(): void {
    const state = this.linkState;
    const seconds = state.kind === 'retrying' ? Math.max(0, Math.ceil((state.at - Date.now()) / 1000)) : 0;
    byId('status-retry').textContent = state.kind === 'retrying' ? `reconnecting in ${seconds} s` : '';
  }

  /** Sounds and announces new or escalated SOS alarms, then redraws. */
  private changed(change: BoardChange, pushed?: Alert): void {
    const loud = [...change.newSos, ...change.escalated];
    if (loud.length > 0) {
      this.alarm.sos();
      byId('announcer').textContent = loud
        .map((a) => (change.newSos.includes(a) ? `SOS from ${a.tech}` : `SOS from ${a.tech} rose to level ${a.level}`))
        .join('. ');
    }
    this.renderAll();
    if (pushed !== undefined && pushed.id === this.list.selected) void this.refreshMap();
  }

  private renderAll(): void {
    this.renderRetry();
    if (this.settings === undefined) return;
    const now = this.now();
    const alerts = this.board.sorted();
    this.list.render(alerts, this.settings, now);
    const selected = this.list.selected === undefined ? undefined : this.board.get(this.list.selected);
    this.detail.render(selected, this.settings, now, this.scene, this.linkState.kind === 'live');
    byId('alert-count').textContent = alerts.length === 0 ? '' : `${alerts.length}`;
    const sos = alerts.filter((a) => a.kind === 'sos' && a.state === 'open').length;
    document.title = `${sos > 0 ? `(${sos} SOS) ` : ''}Safety console · fieldtrack`;
  }

  private selectionChanged(): void {
    this.detail.note.value = '';
    this.detail.clearReport();
    this.scene = undefined;
    this.renderAll();
    void this.refreshMap();
  }

  /** Reloads the selected alert's map; an answer for an older selection is dropped. */
  private async refreshMap(): Promise<void> {
    const request = ++this.sceneRequest;
    const id = this.list.selected;
    const alert = id === undefined ? undefined : this.board.get(id);
    if (alert === undefined || this.api === undefined) {
      this.scene = undefined;
      this.drawScene();
      return;
    }
    this.track = trackWindowFor(alert, this.track);
    const scene = await loadScene(this.api, alert, this.now(), this.track);
    if (request !== this.sceneRequest) return;
    this.scene = scene;
    this.drawScene();
    this.renderAll();
  }

  private drawScene(): void {
    const selected = this.list.selected;
    const message = selected === undefined ? 'Select an alert to see it on the map.' : 'No position known yet.';
    const scene =
      this.scene !== undefined && this.board.get(selected ?? '')?.tech === this.scene.techId ? this.scene : undefined;
    byId('map-desc').textContent = drawMap(
      this.map,
      scene,
      scene === undefined && selected !== undefined ? 'Loading map…' : message,
      this.settings?.tiles ?? null,
    );
    const caption = byId('map-caption');
    if (scene === undefined) caption.textContent = '';
    else if (scene.problems.length > 0) caption.textContent = `Partly loaded: ${scene.problems.join('; ')}`;
    else
      caption.textContent = scene.tech?.live ? 'live position, track of the last 30 minutes' : 'position when raised';
  }

  /** Acknowledge or resolve the selected alert. */
  private async act(kind: 'ack' | 'resolve'): Promise<void> {
    const id = this.list.selected;
    const alert = id === undefined ? undefined : this.board.get(id);
    const link = this.link;
    if (alert === undefined || link === undefined) return;
    const name = `${KIND_LABELS[alert.kind] ?? alert.kind} · ${alert.tech}`;
    const note = this.detail.note.value.trim();
    const focusWasOnButton =
      document.activeElement === this.detail.ack || document.activeElement === this.detail.resolve;
    this.detail.setBusy(true);
    this.detail.report(true, kind === 'ack' ? 'Acknowledging…' : 'Resolving…');
    try {
      const reply = await link.request(
        kind === 'ack' ? { t: 'ack', id: alert.id } : { t: 'resolve', id: alert.id, ...(note ? { note } : {}) },
      );
      if (reply.t === 'err') this.detail.report(false, `Refused (${reply.code}): ${reply.msg}`);
      else if (kind === 'ack') {
        this.detail.report(
          true,
          `Acknowledged ${name}.${alert.kind === 'sos' ? ' Escalation stopped; the technician was told.' : ''}`,
        );
      } else {
        this.detail.report(true, `Resolved ${name}.`);
        if (this.list.selected === alert.id) this.detail.note.value = '';
      }
    } catch (err) {
      this.detail.report(false, (err as Error).message);
    } finally {
      this.detail.setBusy(false);
      this.renderAll();
      // Keep keyboard users in the panel: a disabled button would drop focus to the page.
      if (focusWasOnButton && (document.activeElement === document.body || this.detail.ack.disabled)) {
        if (!this.detail.resolve.disabled) this.detail.resolve.focus();
      }
    }
  }
}

new ConsoleApp().init();
