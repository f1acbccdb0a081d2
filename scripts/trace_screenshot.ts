/**
 * docs/img/trace.png: a real `peervma run --trace` file opened in
 * speedscope (offline trace viewer, devDependency) in headless Chromium.
 * speedscope shows one thread at a time, so the picture stacks three
 * captures: each device worker's track zoomed on a few milliseconds of
 * DMA / compute slices (the mouse on one DMA slice: its arguments in the
 * tooltip), and the kernel track over the whole run. Not part of the CLI:
 * a docs helper, rerun when the trace format or the viewer changes.
 *
 *   npm run build --silent && npx tsx scripts/trace_screenshot.ts [out.png]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import type { ChromeTraceEvent } from '../src/trace/recorder.js';
import { currentProfile, launchChromium, openInSpeedscope } from './speedscope_page.js';

const WIDTH = 1400;
/** speedscope's layout: the minimap above y=122, the time axis, then the first row of the flame chart. */
const FIRST_ROW_Y = 152;
const ROW_H = 20;

const out = resolve(process.argv[2] ?? 'docs/img/trace.png');
const trace = join(mkdtempSync(join(tmpdir(), 'peervma-trace-shot-')), 'camera-chain.trace.json');
execFileSync(process.execPath, ['dist/src/cli/main.js', 'run', 'scenarios/camera-chain.yaml', '--frames', '4', '--quiet', '--trace', trace], { stdio: ['ignore', 'ignore', 'inherit'] });
const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: ChromeTraceEvent[] }).traceEvents;

/** Selects the profile of thread `tid` (speedscope: `n` goes to the next one). */
async function selectThread(page: Page, tid: number): Promise<string> {
  for (let i = 0; i < 16; i++) {
    const p = await currentProfile(page);
    if (p.title.endsWith(`(tid ${tid})`)) return p.title;
    await page.keyboard.press('n');
  }
  throw new Error(`speedscope: no profile for tid ${tid}`);
}

/** The name in speedscope's hover tooltip ("85.00µs (0.02%) compute {...}"), or null. */
async function tooltip(page: Page): Promise<string | null> {
  const text = await page.innerText('body');
  return /\d(?:µs|ms|s) \([\d.]+%\)\s*([^\n]+)/.exec(text)?.[1] ?? null;
}

/**
 * Zooms track `tid` on slice `target` (a window of `windowUs` around it)
 * and leaves the mouse on it, so its tooltip shows. speedscope maps
 * [first start, last end] of the track onto the width; ctrl+wheel zooms
 * keeping the point under the mouse, scaling by 1 + deltaY/40, at most
 * 10x per event. The mouse then looks for the slice near that point.
 */
async function zoomOn(page: Page, tid: number, target: ChromeTraceEvent, windowUs: number): Promise<void> {
  const track = events.filter((e) => e.tid === tid && e.ph === 'X');
  const t0 = Math.min(...track.map((e) => e.ts!));
  const span = Math.max(...track.map((e) => e.ts! + e.dur!)) - t0;
  const anchor = ((target.ts! + target.dur! / 2 - t0) / span) * WIDTH;
  await page.mouse.move(anchor, FIRST_ROW_Y);
  await page.keyboard.down('Control');
  for (let f = span / windowUs; f > 1.01; f /= Math.min(f, 10)) {
    await page.mouse.wheel(0, 40 * (1 / Math.min(f, 10) - 1));
    await page.waitForTimeout(150);
  }
  await page.keyboard.up('Control');
  const want = `${target.name} ${JSON.stringify(target.args)}`;
  for (let dx = 0; dx < 400; dx = dx <= 0 ? 4 - dx : -dx) {
    for (let row = 0; row < 6; row++) {
      await page.mouse.move(anchor + dx, FIRST_ROW_Y + row * ROW_H);
      // speedscope redraws the tooltip on the next frame (slow on a loaded host).
      await page.evaluate('new Promise((r) => requestAnimationFrame(() => r(0)))');
      if ((await tooltip(page)) === want) return;
    }
  }
  throw new Error(`speedscope: no tooltip for ${want}`);
}

/** The slices of a track named `name`, in time order. */
const slices = (tid: number, name: string) => events.filter((e) => e.tid === tid && e.ph === 'X' && e.name === name).sort((a, b) => a.ts! - b.ts!);
/** A DMA of the steady state: the first ones after a page request are slow (cold TLB). */
const steadyDma = (tid: number) => slices(tid, 'DMA').filter((e) => e.ts! > (slices(tid, 'page request')[0]?.ts ?? 0))[8];

const browser = await launchChromium();
try {
  const shots: { caption: string; png: Buffer }[] = [];
  const notifier = slices(0, 'mmu notifier invalidate (start..end)')[0];
  const ackWait = slices(0, 'invalidation').find((e) => e.ts! >= notifier.ts! && e.ts! + e.dur! <= notifier.ts! + notifier.dur!)!;
  const views: [number, ChromeTraceEvent, number, string][] = [
    [1, steadyDma(1), 1500, 'a DMA slice (64 KiB written into cc0\'s BAR, peer to peer) after each compute slice; the mouse on one DMA'],
    [2, steadyDma(2), 1500, 'compute, then the DMA of the corrected pixels to RAM; the mouse on one DMA'],
    [0, ackWait, 4 * notifier.dur!, 'BAR slots recycled: an mmu notifier invalidation and inside it the invalidation sent to the camera, until its ack; the mouse on it'],
  ];
  for (const [tid, target, windowUs, what] of views) {
    const { page, complaints } = await openInSpeedscope(browser, trace, { width: WIDTH, height: tid === 0 ? 270 : 210 });
    const title = await selectThread(page, tid);
    await zoomOn(page, tid, target, windowUs);
    if (complaints.length > 0) throw new Error(`speedscope complained: ${complaints.slice(0, 3).join('; ')}`);
    shots.push({ caption: `<b>${title}</b>, zoomed to ${(windowUs / 1000).toFixed(1)} ms: ${what}`, png: await page.screenshot() });
    await page.close();
  }
  const page = await browser.newPage({ viewport: { width: WIDTH, height: 400 } });
  const html = shots.map((s) => `<div style="padding:6px 4px">${s.caption}</div><img style="display:block" src="data:image/png;base64,${s.png.toString('base64')}">`).join('');
  await page.setContent(`<body style="margin:0;background:#fff;font:13px sans-serif">${html}<div style="padding:6px 4px">peervma run scenarios/camera-chain.yaml --frames 4 --trace FILE, opened with npx speedscope FILE</div></body>`);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
}
