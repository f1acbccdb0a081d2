// What a trace viewer needs from our Chrome trace-event JSON (the checks
// Perfetto's JSON importer and speedscope's importer make): every event has
// a phase we write, a name, integer pid/tid and (but metadata) a finite
// timestamp >= 0; each track's events are in start order; complete slices
// nest (a slice inside the one it starts in, or after it ended); every
// track with events is named. Returns the problems found (empty: valid).
import type { ChromeTraceEvent } from '../../src/trace/recorder.js';

export function traceProblems(json: unknown): string[] {
  const bad: string[] = [];
  const events = (json as { traceEvents?: unknown }).traceEvents;
  if (!Array.isArray(events)) return ['no traceEvents array'];
  const named = new Set<string>();
  const last = new Map<string, number>();
  const open = new Map<string, ChromeTraceEvent[]>();
  for (const [i, e] of (events as ChromeTraceEvent[]).entries()) {
    const at = `event ${i} (${e.name})`;
    if (typeof e.name !== 'string' || e.name === '') bad.push(`event ${i}: no name`);
    if (!Number.isInteger(e.pid) || !Number.isInteger(e.tid)) bad.push(`${at}: pid/tid not integers`);
    const track = `${e.pid}/${e.tid}`;
    if (e.ph === 'M') {
      if (e.name === 'thread_name') named.add(track);
      continue;
    }
    if (e.ph !== 'X' && e.ph !== 'i') bad.push(`${at}: phase ${e.ph}`);
    if (!Number.isFinite(e.ts) || e.ts! < 0) bad.push(`${at}: ts ${e.ts}`);
    if (e.ph === 'X' && !(Number.isFinite(e.dur) && e.dur! >= 0)) bad.push(`${at}: dur ${e.dur}`);
    if (!named.has(track)) bad.push(`${at}: track ${track} has no thread_name before it`);
    if (e.ts! < (last.get(track) ?? 0)) bad.push(`${at}: track ${track} goes back in time (${e.ts} < ${last.get(track)})`);
    last.set(track, e.ts!);
    if (e.ph !== 'X') continue;
    const stack = open.get(track) ?? [];
    while (stack.length > 0 && stack[stack.length - 1].ts! + stack[stack.length - 1].dur! <= e.ts!) stack.pop();
    const top = stack[stack.length - 1];
    if (top && e.ts! + e.dur! > top.ts! + top.dur!) bad.push(`${at}: on track ${track} ends after ${top.name}, which it starts in`);
    stack.push(e);
    open.set(track, stack);
  }
  return bad;
}
