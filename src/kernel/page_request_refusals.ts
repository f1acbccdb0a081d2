/**
 * The kernel's log of a device's refused page requests (what dmesg keeps
 * of the failed responses an IOMMU driver's page request handler sends:
 * iopf_group_response with IOMMU_PAGE_RESP_INVALID, the reason logged by
 * the fault handler): each line names the range, the errno and hmm's or
 * the exporter's reason. The device only gets the errno back; its driver,
 * reporting a failed command, looks up the line for the page and errno
 * the device's error names (src/devices/va_failure.ts), so the kernel's
 * reason is added only when it is that failure's reason.
 *
 * Invariants: reasonFor(msg) returns a line only when msg ends with a
 * failed page and errno and the newest refusal kept with that errno
 * covered that page; a page request answered afterwards for any of a
 * refusal's pages drops it (a later failure there is not its doing: a
 * timeout, a livelock give-up, an unbound device). At most KEEP lines
 * (a device has at most PRI_GROUPS requests in flight).
 */
import { PAGE_SIZE } from '../shm/constants.js';
import { PRI_GROUPS } from '../shm/tlb_layout.js';
import { parseFailedAt } from '../devices/va_failure.js';

const KEEP = 2 * PRI_GROUPS;

interface Refusal {
  readonly start: number;
  readonly end: number;
  readonly errno: string;
  readonly line: string;
}

export class PageRequestRefusals {
  /** Oldest first. */
  private readonly recent: Refusal[] = [];

  /** A page request for [start, end) refused with `errno`; `line` is the kernel's log line for it. */
  refused(start: number, end: number, errno: string, line: string): void {
    this.answered(start, end);
    this.recent.push({ start, end, errno, line });
    if (this.recent.length > KEEP) this.recent.shift();
  }

  /** A page request answered for the pages of [start, end) (`asked`: a sparse request's, per page, nonzero for those it asked): their refusals are past. */
  answered(start: number, end: number, asked?: Uint8Array): void {
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i];
      if (r.end > start && r.start < end && (!asked || askedIn(asked, start, r.start, r.end))) this.recent.splice(i, 1);
    }
  }

  /** The kernel's line for the failure a device's message reports (failed page and errno), or null when no refusal kept is its reason. */
  reasonFor(deviceMessage: string): string | null {
    const f = parseFailedAt(deviceMessage);
    if (!f) return null;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i];
      if (r.errno === f.errno && f.va >= r.start && f.va < r.end) return r.line;
    }
    return null;
  }

  /**
   * The device's message with the kernel's line appended when a refused page
   * request is that failure's reason (reasonFor), else as it is: what every
   * driver path that reports a device's failure to the user says.
   */
  explain(deviceMessage: string): string {
    const why = this.reasonFor(deviceMessage);
    return why ? `${deviceMessage}; kernel: ${why}` : deviceMessage;
  }

  /** Forgets every line (a new binding: the old one's refusals are no reason for its failures). */
  clear(): void {
    this.recent.length = 0;
  }
}

/** Did a sparse request over pages from `start` (per-page `asked`) ask for a page of [r0, r1)? */
function askedIn(asked: Uint8Array, start: number, r0: number, r1: number): boolean {
  const i0 = Math.max(0, Math.floor((r0 - start) / PAGE_SIZE));
  const i1 = Math.min(asked.length, Math.ceil((r1 - start) / PAGE_SIZE));
  for (let i = i0; i < i1; i++) if (asked[i] !== 0) return true;
  return false;
}
