/**
 * A headless Chromium for the browser tests: finds the binary (`CHROMIUM` env, else Debian's
 * `/usr/bin/chromium` and the usual names), launches it through `npm:puppeteer-core`
 * (a test-only dependency, pinned in deno.json), and closes it with `await using`.
 *
 * @module
 */

import puppeteer, { type Browser, type Page } from "puppeteer-core";

const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
];

/**
 * The path of a Chromium binary on this machine, or `undefined` (tests then skip, saying so).
 *
 * @returns `$CHROMIUM` when set and present, else the first of the usual paths that exists.
 */
export function findChromium(): string | undefined {
  const wanted = Deno.env.get("CHROMIUM");
  for (const path of wanted ? [wanted] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The Chromium the browser tests use (found once), or `undefined`. */
export const CHROMIUM: string | undefined = findChromium();

if (CHROMIUM === undefined) {
  // deno-lint-ignore no-console
  console.log(
    "SKIPPED: the browser tests need Chromium (apt-get install -y chromium, or set CHROMIUM=PATH)",
  );
}

/** A launched headless Chromium, closed by `await using`. */
export class HeadlessBrowser implements AsyncDisposable {
  private constructor(readonly browser: Browser) {}

  /** Launches the Chromium found by {@linkcode findChromium}. */
  static async launch(): Promise<HeadlessBrowser> {
    if (CHROMIUM === undefined) throw new Error("no Chromium on this machine");
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      pipe: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
    });
    return new HeadlessBrowser(browser);
  }

  /** A new page of the given size, with console errors collected in `errors`. */
  async page(width = 1280, height = 800): Promise<{ page: Page; errors: string[] }> {
    const page = await this.browser.newPage();
    await page.setViewport({ width, height });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    return { page, errors };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.browser.close();
  }
}
