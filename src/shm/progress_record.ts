/**
 * A progress record a computing device publishes in its own memory and a
 * peer reads without disturbing it (RFC use case [B]), protected by a
 * seqcount because a DMA read of the record is not atomic:
 *
 *   writer (accelerator, local memory)      reader (NIC, DMA over the bus)
 *   ----------------------------------      ------------------------------
 *   Atomics.store(seq, s + 1)   (odd)       read the whole record (s1 = seq)
 *   store iteration, checksum, done         read seq again (s2)
 *   Atomics.store(seq, s + 2)   (even)      torn unless s1 == s2 and s1 even
 *   [Required: a reader never accepts a record whose seq was odd or moved]
 */
import { defineLayout } from './layout.js';

export const ProgressRecord = defineLayout({
  seq: { writer: 'worker', doc: 'seqcount: odd while the record is being written' },
  iteration: { writer: 'worker', doc: 'iterations completed' },
  checksum: { writer: 'worker', doc: 'checksum of the buffer after `iteration` iterations' },
  done: { writer: 'worker', doc: '1 once the computation finished' },
});
