/**
 * One safety console open in a browser tab, as the tests drive it: sign in, wait for the
 * live feed, find alert rows, and record everything the page did — each request and
 * WebSocket it opened (to prove it stays on its own origin), uncaught errors, CSP
 * violations, and how many alarm beeps it synthesised.
 */
import type { BrowserContext, Locator, Page } from 'playwright-core';

/** Counts oscillators started (the alarm's beeps) and CSP violations, inside the page. */
const INSTRUMENT = `
  window.__beeps = 0;
  window.__cspViolations = [];
  const createOscillator = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () {
    window.__beeps += 1;
    return createOscillator.call(this);
  };
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });
`;

export class ConsolePage {
  readonly requests: string[] = [];
  readonly websockets: string[] = [];
  readonly pageErrors: string[] = [];

  private constructor(
    readonly page: Page,
    readonly origin: string,
  ) {
    page.on('request', (req) => this.requests.push(req.url()));
    page.on('websocket', (ws) => this.websockets.push(ws.url()));
    page.on('pageerror', (err) => this.pageErrors.push(err.message));
  }

  /** A new tab on `origin`'s console, not signed in yet; `script` runs in the page before its own. */
  static async open(context: BrowserContext, origin: string, script?: string): Promise<ConsolePage> {
    const page = await context.newPage();
    await page.addInitScript(INSTRUMENT);
    if (script !== undefined) await page.addInitScript(script);
    const con = new ConsolePage(page, origin);
    await page.goto(`${origin}/console`);
    await page.locator('#signin-form').waitFor();
    return con;
  }

  /** Types `token` and presses Sign in (a real click: it also unlocks audio). */
  async signIn(token: string): Promise<void> {
    await this.page.locator('#token').fill(token);
    await this.page.locator('#signin').click();
  }

  /** Waits until the status says the feed is live (the snapshot arrived). */
  async waitLive(timeout = 10_000): Promise<void> {
    await this.page.locator('#status[data-kind="live"]').waitFor({ timeout });
  }

  /** The list row of alert `id`. */
  row(id: string): Locator {
    return this.page.locator(`#alerts [role="option"][data-id="${id}"]`);
  }

  /** Beeps synthesised so far. */
  beeps(): Promise<number> {
    return this.page.evaluate(() => (window as unknown as { __beeps: number }).__beeps);
  }

  cspViolations(): Promise<string[]> {
    return this.page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations);
  }

  /** Presses Tab until `match` holds for the focused element; returns how many presses it took. */
  async tabTo(match: { id?: string; dataId?: string }, maxPresses = 30): Promise<number> {
    for (let i = 1; i <= maxPresses; i++) {
      await this.page.keyboard.press('Tab');
      const focused = await this.page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return { id: el?.id ?? '', dataId: el?.dataset.id ?? '' };
      });
      if (match.id !== undefined && focused.id === match.id) return i;
      if (
        match.dataId !== undefined &&
        focused.dataId !== '' &&
        (match.dataId === '*' || focused.dataId === match.dataId)
      ) {
        return i;
      }
    }
    throw new Error(`Tab never reached ${JSON.stringify(match)} in ${maxPresses} presses`);
  }

  /** The id or data-id of the focused element. */
  focused(): Promise<string> {
    return this.page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return el?.dataset.id ?? el?.id ?? '';
    });
  }
}
