/**
 * Debian's Chromium driven headless through playwright-core (no browser download):
 * a fresh profile per launch, and the flags without which Chromium's own background
 * connections get in the way on a locked-down machine. Tests skip only when the
 * binary is absent and CI is not set; under CI=true a missing Chromium fails them.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Where deploy/services.sh installs Chromium (Debian's `chromium` package). */
export const CHROMIUM_PATH = process.env.SHARDCAST_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can (or must: CI). */
export function browserSkipReason(): string | null {
  if (existsSync(CHROMIUM_PATH) || process.env.CI === 'true' || process.env.CI === '1') return null;
  return `Chromium not found at ${CHROMIUM_PATH}: browser tests skipped (apt-get install -y chromium, or set SHARDCAST_CHROMIUM; with CI=true they run and fail instead)`;
}

/** A headless Chromium with a fresh profile; close() removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'shardcast-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
