/**
 * Driver lock: the mutex of struct dmirror (lib/test_hmm.c), async, with
 * tryLock for non-blockable callbacks (mutex_trylock) and assertHeld for
 * preconditions (lockdep_assert_held).
 *
 * Used as the mm's mmap_lock (Mm.lock), a BAR manager's lock, an
 * exporter's lock and an importer's driver lock (the lock of the
 * begin -> fault -> lock -> retry pattern in mmu_notifier.ts).
 *
 * Threading: main thread only; "held" is a flag, not an OS lock. Ownership
 * passes in FIFO order: unlock() hands the lock straight to the oldest
 * waiter, so a waiter is never overtaken by a later tryLock().
 */
export class DriverLock {
  private held = false;
  private readonly queue: (() => void)[] = [];

  constructor(readonly name: string) {}

  get isHeld(): boolean {
    return this.held;
  }

  tryLock(): boolean {
    if (this.held) return false;
    this.held = true;
    return true;
  }

  async lock(): Promise<void> {
    if (this.tryLock()) return;
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  unlock(): void {
    if (!this.held) throw new Error(`${this.name}: unlock of a lock not held`);
    const next = this.queue.shift();
    if (next) next(); // ownership passes straight to the next waiter
    else this.held = false;
  }

  assertHeld(): void {
    if (!this.held) throw new Error(`${this.name}: lock not held (lockdep_assert_held)`);
  }
}
