/**
 * How a device's error names a translation that failed (workers/runtime/
 * va_space.ts: a DMA by VA or a va-prefault; workers/mirror.ts: a dmirror
 * READ / WRITE): its message ends with the
 * page's address and the errno its page request got. Declared once, for
 * the device that writes it and the driver that reads it back to match
 * the kernel's refusal of that page (src/kernel/page_request_refusals.ts):
 * the device only gets the errno, the kernel's log has the reason.
 */

/** The tail of the device's message: where the translation failed and with what errno. */
export function failedAt(va: number, errno: string): string {
  return `failed at va 0x${va.toString(16)}: ${errno}`;
}

const FAILED_AT = /failed at va 0x([0-9a-f]+): (E[A-Z0-9]+)$/;

/** The address and errno a device message ends with (failedAt), or null for any other failure. */
export function parseFailedAt(message: string): { va: number; errno: string } | null {
  const m = FAILED_AT.exec(message);
  return m ? { va: parseInt(m[1], 16), errno: m[2] } : null;
}
