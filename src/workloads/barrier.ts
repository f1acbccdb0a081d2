/**
 * A barrier for the instances of one run (src/workloads/instances.ts) or
 * the streams of one NIC group (accel_nic_stream/nic_group.ts): pass()
 * resolves once all n have passed; open() lets everyone through.
 *
 * Invariants: each instance passes once; a failed instance must not hold
 * the others, so whoever sees it fail calls pass() for it or open(). The
 * barrier itself has no timeout: every instance reaches it through waits
 * on devices that do (an untimed wait added before a pass() would not be
 * covered by anything here).
 */
export class Barrier {
  private arrived = 0;
  private release: () => void = () => undefined;
  private readonly all = new Promise<void>((r) => (this.release = r));

  constructor(private readonly n: number) {
    if (n <= 1) this.release();
  }

  pass(): Promise<void> {
    if (++this.arrived >= this.n) this.release();
    return this.all;
  }

  open(): void {
    this.release();
  }
}
