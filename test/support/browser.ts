import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Headless Chromium for browser tests: Debian's build (scripts/setup-browser.sh installs it;
 * CHROMIUM_PATH overrides), driven by playwright-core, which downloads nothing. A missing browser
 * fails the test with the fix, it never skips it.
 */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

export async function launchBrowser(): Promise<Browser> {
  try {
    return await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      // Tests run as root in CI, where Chromium's own sandbox cannot start.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
  } catch (error) {
    throw new Error(`cannot start Chromium at ${chromiumPath()} (run scripts/setup-browser.sh or set CHROMIUM_PATH): ${(error as Error).message}`);
  }
}

/**
 * A page that collects uncaught page errors and console errors, for tests that a page works
 * without a script failing silently.
 */
export async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, errors };
}
