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
 * waiter, so a waiter is never overtaken by a later tryLock(). A shared
 * mode (readLock, down_read) lets page faults in device-special VMAs run
 * side by side under mmap_lock, as upstream's mmap_read_lock does.
 */
export class DriverLock {
  private held = false;
  /** Shared holders (readLock: mmap_read_lock). */
  private readers = 0;
  private readonly queue: { readonly wake: () => void; readonly shared: boolean }[] = [];

  constructor(readonly name: string) {}

  /** Held, exclusively or shared. */
  get isHeld(): boolean {
    return this.held || this.readers > 0;
  }

  tryLock(): boolean {
    if (this.held || this.readers > 0) return false;
    this.held = true;
    return true;
  }

  async lock(): Promise<void> {
    if (this.tryLock()) return;
    await new Promise<void>((wake) => this.queue.push({ wake, shared: false }));
  }

  unlock(): void {
    if (!this.held) throw new Error(`${this.name}: unlock of a lock not held`);
    this.held = false;
    this.handOver();
  }

  /**
   * Shared mode (down_read): any number of readers at once, none while it
   * is held exclusively; a reader queues behind any waiter, so a writer
   * waiting is never starved by a stream of readers.
   */
  async readLock(): Promise<void> {
    if (!this.held && this.queue.length === 0) {
      this.readers++;
      return;
    }
    await new Promise<void>((wake) => this.queue.push({ wake, shared: true }));
  }

  readUnlock(): void {
    if (this.readers === 0) throw new Error(`${this.name}: read unlock of a lock not read-held`);
    if (--this.readers === 0) this.handOver();
  }

  /** Ownership passes straight to the oldest waiter (an exclusive one, or every shared one at the head). */
  private handOver(): void {
    const head = this.queue[0];
    if (!head || this.held) return;
    if (!head.shared) {
      if (this.readers > 0) return;
      this.queue.shift();
      this.held = true;
      head.wake();
      return;
    }
    while (this.queue.length > 0 && this.queue[0].shared) {
      this.readers++;
      this.queue.shift()!.wake();
    }
  }

  /** Held in either mode (lockdep_assert_held). */
  assertHeld(): void {
    if (!this.isHeld) throw new Error(`${this.name}: lock not held (lockdep_assert_held)`);
  }

  /** Held exclusively (mmap_assert_write_locked): for paths that change PTEs or pages across awaits. */
  assertWriteHeld(): void {
    if (!this.held) throw new Error(`${this.name}: lock not held exclusively (mmap_assert_write_locked)`);
  }
}
