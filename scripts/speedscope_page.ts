/**
 * Opens a Chrome trace-event file in speedscope (the offline trace viewer,
 * devDependency) in headless Chromium, the way `npx speedscope FILE` does:
 * speedscope's #localProfilePath hook loads a script that hands it the
 * file. Shared by scripts/trace_screenshot.ts and test/trace/trace.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 });
}

export interface SpeedscopePage {
  readonly page: Page;
  /** speedscope's console warnings and errors, and page errors (an importer complaint lands here). */
  readonly complaints: string[];
  /** Requests that left file:// (there must be none: speedscope works offline). */
  readonly remote: string[];
}

/** speedscope's index.html inside the installed package. */
function speedscopeIndex(): string {
  return join(dirname(createRequire(import.meta.url).resolve('speedscope/package.json')), 'dist/release/index.html');
}

/** Opens `traceFile` in a new page of `browser`; resolves once speedscope has drawn the first profile. */
export async function openInSpeedscope(browser: Browser, traceFile: string, viewport = { width: 1400, height: 700 }): Promise<SpeedscopePage> {
  const loader = join(mkdtempSync(join(tmpdir(), 'peervma-speedscope-')), 'load.js');
  writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(basename(traceFile))}, ${JSON.stringify(readFileSync(traceFile).toString('base64'))})`);
  const page = await browser.newPage({ viewport });
  const complaints: string[] = [];
  const remote: string[] = [];
  // WebGL driver chatter ("GPU stall due to ReadPixels") is Chromium's software renderer, not speedscope.
  page.on('console', (m) => {
    if ((m.type() === 'warning' || m.type() === 'error') && !m.text().includes('GL Driver')) complaints.push(m.text());
  });
  page.on('pageerror', (e) => complaints.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) remote.push(r.url());
  });
  await page.goto(`file://${speedscopeIndex()}#localProfilePath=${loader}`, { timeout: 60_000 });
  // The profile counter "(k/n)" in the title bar appears once the file is imported.
  await page.waitForFunction('/\\(\\d+\\/\\d+\\)/.test(document.body.innerText)', undefined, { timeout: 60_000 });
  return { page, complaints, remote };
}

/** The title speedscope shows for the current profile: "<process> (pid p), <thread> (tid t)", and "k/n". */
export async function currentProfile(page: Page): Promise<{ title: string; index: number; count: number }> {
  const text = await page.innerText('body');
  const m = /([^\n]*\(pid \d+\), [^\n]*\(tid \d+\))\s*\((\d+)\/(\d+)\)/.exec(text);
  if (!m) throw new Error(`speedscope: no profile title in the page (${text.slice(0, 200)})`);
  return { title: m[1], index: Number(m[2]), count: Number(m[3]) };
}
