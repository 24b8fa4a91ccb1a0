// Headless Chromium for the browser tests: Debian's `chromium` (no browser download) driven by playwright-core,
// kept off the network, with a fresh profile and SwiftShader's software WebGL2 where there is no GPU.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Where Debian's package puts it; CHROMIUM_PATH overrides. */
export const chromiumPath =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or undefined when they can. In CI (CI=true) a missing browser is a
 * failure, not a skip: the browser path must be tested on every submission.
 */
export const browserMissing = (): string | undefined =>
  existsSync(chromiumPath) ? undefined : `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;

/** `test()` options: skip locally without a browser; in CI run anyway, so the launch fails loudly. */
export const browserTestOptions = (): { skip?: string; timeout: number } => {
  const missing = browserMissing();
  return missing && process.env.CI !== 'true' ? { skip: missing, timeout: 1 } : { timeout: 240_000 };
};

/**
 * The flags: no network services, no first-run UI, SwiftShader WebGL even without a GPU, and WebGPU on SwiftShader's
 * Vulkan (headless Chromium otherwise offers navigator.gpu with no adapter). Playwright adds --headless.
 */
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--ignore-gpu-blocklist',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
];

export interface Browser {
  readonly context: BrowserContext;
  readonly profile: string;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh --user-data-dir (a temporary profile, removed on close). */
export const launch = async (options: { downloads?: boolean } = {}): Promise<Browser> => {
  const missing = browserMissing();
  if (missing) throw new Error(`cannot run the browser tests: ${missing}`);
  const profile = mkdtempSync(join(tmpdir(), 'fusediff-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    acceptDownloads: options.downloads ?? true,
    viewport: { width: 1280, height: 860 },
    // anything but localhost is refused below; this only keeps Playwright from waiting on a proxy
    offline: false,
  });
  // the page is self-contained: refuse every request that is not to the local server
  await context.route(/^(?!http:\/\/(127\.0\.0\.1|localhost)[:/]).*/, (route) => route.abort('blockedbyclient'));
  return {
    context,
    profile,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
};
