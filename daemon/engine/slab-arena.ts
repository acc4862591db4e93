/**
 * Byte strings kept for minutes (the memory journal's command data), copied into
 * shared slabs of SLAB_BYTES. Why not one allocation each: freed one by one, small
 * blocks stay resident in malloc's heaps (others live between them), so a journal
 * that filled with 64 MiB of commands and then let them go still held most of it.
 * A slab is one allocation past glibc's mmap threshold (daemon/allocator.ts): once
 * nothing in it is live and V8 collects it, the pages go back to the system at once.
 *
 * A slab lives as long as any string in it, so a few long-lived strings could pin
 * many slabs: a slab other than the current one whose live bytes fall under a
 * quarter is compacted (its live strings copied into the current slab), so the
 * slabs held stay within about four times the live bytes. `held` counts the memory
 * the arena holds, for its owner's byte bound.
 */

/** Bytes of one slab. */
export const SLAB_BYTES = 1024 * 1024;
/** Strings longer than this get an allocation of their own (already past the mmap threshold). */
const OWN_ALLOCATION_BYTES = 128 * 1024;
const EMPTY = new Uint8Array(0);

/** A slab: one buffer, filled from the start. */
export interface Slab {
  buffer: Buffer;
  used: number;
  /** Bytes of live strings in it. */
  live: number;
  /** Cells stored in it, live or freed (for compaction). */
  cells: SlabCell[];
  /** Waiting in the compaction queue. */
  queued: boolean;
}

/** Where one stored string lives: `data` is a view into `slab`, or an allocation of its own (`slab` null). */
export interface SlabCell {
  data: Uint8Array;
  slab: Slab | null;
}

/** Copies strings into slabs; see the header. */
export class SlabArena {
  /** Bytes the arena holds: slabs with anything live in them, and strings with an allocation of their own. */
  held = 0;
  private current: Slab | undefined;
  private sparse: Slab[] = [];

  /** `onRelease`: told the bytes of each slab or own allocation the arena lets go. */
  constructor(
    private readonly onRelease: (bytes: number) => void = () => {},
    private readonly slabBytes = SLAB_BYTES,
  ) {}

  /** Copies `bytes` into the arena and points `cell` at the copy. */
  store(cell: SlabCell, bytes: Uint8Array): void {
    const length = bytes.length;
    if (length === 0) {
      cell.data = EMPTY;
      cell.slab = null;
      return;
    }
    if (length > Math.min(OWN_ALLOCATION_BYTES, this.slabBytes)) {
      cell.data = Uint8Array.from(bytes);
      cell.slab = null;
      this.held += length;
      return;
    }
    let slab = this.current;
    if (slab === undefined || slab.used + length > this.slabBytes) {
      if (slab !== undefined) this.retire(slab);
      // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
      slab = { buffer: Buffer.allocUnsafeSlow(this.slabBytes), used: 0, live: 0, cells: [], queued: false };
      this.current = slab;
      this.held += this.slabBytes;
    }
    slab.buffer.set(bytes, slab.used);
    cell.data = slab.buffer.subarray(slab.used, slab.used + length);
    cell.slab = slab;
    slab.used += length;
    slab.live += length;
    slab.cells.push(cell);
  }

  /** The cell's string is no longer needed: its slab may go, or be compacted. */
  free(cell: SlabCell): void {
    const { slab } = cell;
    const length = cell.data.length;
    cell.data = EMPTY;
    cell.slab = null;
    if (slab === null) {
      this.release(length);
      return;
    }
    slab.live -= length;
    if (slab !== this.current) this.retire(slab);
  }

  /** Copies the live strings of sparse slabs into the current one, letting those slabs go. */
  compact(): void {
    if (this.sparse.length === 0) return;
    const sparse = this.sparse;
    this.sparse = [];
    for (const slab of sparse) {
      slab.queued = false;
      if (slab.live === 0 || slab === this.current) continue;
      for (const cell of slab.cells) {
        if (cell.slab !== slab) continue;
        const bytes = cell.data;
        slab.live -= bytes.length;
        this.store(cell, bytes);
      }
      slab.cells = [];
      this.release(this.slabBytes);
    }
  }

  /** Forgets everything (the owner closes). */
  clear(): void {
    this.current = undefined;
    this.sparse = [];
    this.held = 0;
  }

  /** A slab stops being the current one: gone if nothing in it is live, queued for compaction if little is. */
  private retire(slab: Slab): void {
    if (slab.live === 0) {
      slab.cells = [];
      this.release(this.slabBytes);
    } else if (slab.live < this.slabBytes / 4) {
      this.queue(slab);
    }
  }

  private release(bytes: number): void {
    this.held -= bytes;
    this.onRelease(bytes);
  }

  private queue(slab: Slab): void {
    if (slab.queued) return;
    slab.queued = true;
    this.sparse.push(slab);
  }
}
