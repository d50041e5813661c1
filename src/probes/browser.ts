import { type Browser, chromium } from 'playwright-core';
import { requireTools, which } from '../host/tools.js';

/**
 * Debian's chromium, headless, driven by playwright-core: pages as a user's browser renders and
 * runs them. No sandbox (the harness runs as root), nothing fetched in the background.
 */
export async function launchBrowser(): Promise<Browser> {
  await requireTools('chromium');
  return chromium.launch({
    executablePath: (await which('chromium'))!,
    timeout: 60_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
