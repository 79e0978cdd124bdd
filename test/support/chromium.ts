/**
 * Headless Chromium for the console's browser tests: Debian's `chromium` package (installed
 * with apt-get when missing; a failed install is an error, never a skip) driven by
 * playwright-core, which downloads no browser of its own. Each launch gets a fresh
 * profile, and Chromium's own background traffic (updates, sync, field trials) is off:
 * the machine has no network beyond loopback, and a test must not depend on it.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { aptInstall } from './apt.js';

export const CHROMIUM = '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Makes sure Debian's chromium is installed; throws a clear error when it cannot be. */
export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  aptInstall('chromium');
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is still missing`);
}

/** A running browser with its own temporary profile. */
export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Launches headless Chromium at 1280x720 with a fresh user-data-dir. */
export async function launchChromium(): Promise<Browser> {
  ensureChromium();
  const profile = mkdtempSync(join(tmpdir(), 'fieldtrack-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 720 },
    // Fixed locale and zone: times on screen (and in the screenshot) do not depend on the machine.
    locale: 'en-GB',
    timezoneId: 'Europe/Berlin',
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
