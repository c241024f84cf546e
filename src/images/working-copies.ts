/**
 * Working copies: copies of an original that decode fast (baseline JPEG q95
 * without chroma subsampling, or PNG at zlib level 1 for images with alpha;
 * upright, sRGB, no metadata), made in the background after the upload is
 * acknowledged, and read by renders instead of the original when they have
 * enough pixels. A miss then costs what decoding the copy costs: 2-25x less
 * than a 12 MP progressive JPEG, a PNG or an AVIF.
 *
 * Level 1 covers every in-bounds request of every fit (crop and cover of a
 * very wide or tall image need the most pixels on the short side); each next
 * level has half the sides, for small sizes. None is made where it would not
 * help: animated sources, and baseline JPEGs that are already small or only a
 * little larger than a level.
 */
import { LRUCache } from 'lru-cache';
import type { ImageError } from '../errors.js';
import type { UrlFit } from '../options/grammar.js';
import type { ProbeResult } from '../render/native.js';
import type { RenderOptions } from '../render/options.js';
import type { ObjectStorage } from '../storage/types.js';
import type { OriginalRecord, Store, WorkingCopy } from '../store/types.js';
import type { Logger } from '../log.js';
import type { ImageEvents } from './types.js';
import { shared, type Originals } from './originals.js';
import { costClass, type Renders } from './renders.js';

/** The sizes a level may have: a level whose longer side is below this is not made. */
const MIN_LEVEL_SIDE = 256;
/** Levels below level 1, each half the sides of the one before. */
const LEVELS = 2;
/** A baseline JPEG up to this many pixels is cheap enough to decode: no copies. */
const SMALL_BASELINE_PIXELS = 2_000_000;
/** A copy of a baseline JPEG is worth it only with at most this share of its pixels. */
const BASELINE_GAIN = 0.5;
/** The quality of JPEG copies: nothing visible is lost (PSNR above 40 dB in the tests). */
export const COPY_QUALITY = 95;

export interface WorkingCopySettings {
  enabled: boolean;
  /** A cap on level 1's longer side; undefined: as the constraints need. */
  maxSide: number | undefined;
  maxWidth: number;
  maxHeight: number;
  maxInputPixels: number;
  maxPages: number;
  timeoutMs: number;
}

/** A level to make: its number and size. */
export interface PlannedLevel {
  level: number;
  width: number;
  height: number;
}

/** The levels worth making of an original of `width` x `height` (displayed), given what its header says. */
export function planLevels(width: number, height: number, header: Pick<ProbeResult, 'format' | 'pages' | 'interlaced'>, settings: Pick<WorkingCopySettings, 'maxSide' | 'maxWidth' | 'maxHeight'>): PlannedLevel[] {
  if (header.pages > 1) return [];
  const cheap = header.format === 'jpeg' && !header.interlaced;
  const pixels = width * height;
  if (cheap && pixels <= SMALL_BASELINE_PIXELS) return [];
  // Level 1: the scale the largest crop or cover of the bounds needs; never above the original.
  let scale = Math.min(1, Math.max(settings.maxWidth / width, settings.maxHeight / height));
  if (settings.maxSide !== undefined) scale = Math.min(scale, settings.maxSide / Math.max(width, height));
  const levels: PlannedLevel[] = [];
  for (let level = 1; level <= LEVELS; level++) {
    const s = scale / 2 ** (level - 1);
    const w = Math.max(1, Math.round(width * s));
    const h = Math.max(1, Math.round(height * s));
    if (Math.max(w, h) < MIN_LEVEL_SIDE) break;
    // A baseline JPEG decodes fast already: a copy must save most of its pixels.
    if (cheap && w * h > BASELINE_GAIN * pixels) continue;
    levels.push({ level, width: w, height: h });
  }
  return levels;
}

/** The scale of the original a render needs for box W x H and `fit`; 1 or more means "the original itself". */
export function neededScale(width: number, height: number, boxWidth: number, boxHeight: number, fit: UrlFit): number {
  if (!boxWidth && !boxHeight) return 1;
  const sx = boxWidth / width;
  const sy = boxHeight / height;
  return fit === 'clip' || fit === 'canvas' ? Math.min(sx, sy) : Math.max(sx, sy);
}

/** The smallest copy with enough pixels for a render at `scale` of the original; undefined: the original. */
export function chooseCopy(record: OriginalRecord, scale: number): WorkingCopy | undefined {
  let best: WorkingCopy | undefined;
  for (const copy of record.copies ?? []) {
    // Rounded as the levels are: a level made for exactly this scale is enough.
    const enough = copy.width >= Math.round(record.width * scale) && copy.height >= Math.round(record.height * scale);
    if (enough && (!best || copy.width < best.width)) best = copy;
  }
  return best;
}

/** The storage key of a copy: beside its original's, naming the same generation. */
export function copyKey(originalKey: string, level: number): string {
  return `${originalKey}.c${level}`;
}

/** What `make` did: copies made, none needed, already decided, being made, dropped under load, or failed. */
export type MakeOutcome = 'made' | 'none' | 'decided' | 'busy' | 'dropped' | 'failed';

export class WorkingCopies {
  /** Originals whose copies this process is making now (by storage key). */
  private readonly making = new Set<string>();
  /** Originals whose copies failed or were dropped lately: misses do not retry them for a minute. */
  private readonly failed = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 });

  constructor(
    private readonly settings: WorkingCopySettings,
    private readonly deps: { store: Store; storage: ObjectStorage; renders: Renders; originals: Originals; log: Logger; events?: Pick<ImageEvents, 'workingCopies'> },
  ) {}

  get enabled(): boolean {
    return this.settings.enabled;
  }

  /**
   * Makes the copies of `record` in the background (after an upload, or on the
   * first miss of an original from before copies), unless they are decided or
   * being made (or, unless `again`, failed lately in this process). Never
   * rejects; resolves with what happened.
   */
  async make(record: OriginalRecord, again = false): Promise<MakeOutcome> {
    if (!this.settings.enabled) return 'none';
    const { outcome, bytes } = await this.attempt(record, again);
    if (outcome !== 'decided' && outcome !== 'busy') this.deps.events?.workingCopies(outcome, bytes);
    return outcome;
  }

  private async attempt(record: OriginalRecord, again: boolean): Promise<{ outcome: MakeOutcome; bytes: number }> {
    const none = { outcome: 'none', bytes: 0 } as const;
    if (record.copies !== null) return { outcome: 'decided', bytes: 0 };
    if (this.making.has(record.storageKey) || (!again && this.failed.has(record.storageKey))) return { outcome: 'busy', bytes: 0 };
    this.making.add(record.storageKey);
    const written: string[] = [];
    try {
      // This process' memory of the record may be older than copies another process made.
      const current = await this.deps.store.getOriginal(record.id);
      if (!current || current.generation !== record.generation) return { outcome: 'failed', bytes: 0 }; // deleted or replaced: nothing to retry
      if (current.copies !== null) {
        this.deps.originals.remember(current);
        return { outcome: 'decided', bytes: 0 };
      }
      // Shared, so the probe and each level read it without one detaching it.
      const read = await this.deps.originals.bytes(record);
      const bytes = read.buffer instanceof SharedArrayBuffer ? read : shared(read);
      const made = await this.deps.renders.runInBackground(
        { cost: costClass('copies', record.format, record.width * record.height), key: `copies:${record.storageKey}` },
        async (pool) => {
          const header = await pool.probe(bytes);
          const copies: WorkingCopy[] = [];
          // Each level after the first is made from the one before: upright and cheap to decode already.
          let source = bytes;
          for (const level of planLevels(record.width, record.height, header, this.settings)) {
            const format = header.hasAlpha ? 'png' : 'jpeg';
            const result = await pool.render(source, this.options(level, format));
            const key = copyKey(record.storageKey, level.level);
            const data = new Uint8Array(result.data);
            source = shared(data);
            await this.deps.storage.put(key, data, format === 'png' ? 'image/png' : 'image/jpeg');
            written.push(key);
            copies.push({ level: level.level, width: result.width, height: result.height, format, bytes: data.byteLength, storageKey: key });
          }
          return { copies, jpegQuality: record.jpegQuality ?? (header.format === 'jpeg' ? (header.jpegQuality ?? null) : null) };
        },
      );
      if (made === 'joined') return { outcome: 'busy', bytes: 0 };
      const recorded = await this.deps.store.setCopies(record.id, record.generation, made.copies, made.jpegQuality);
      if (!recorded) {
        // The original was deleted or replaced meanwhile: its copies may not stay.
        await this.deps.storage.delete(written);
        return { outcome: 'failed', bytes: 0 };
      }
      this.deps.originals.remember({ ...record, copies: made.copies, jpegQuality: made.jpegQuality });
      const stored = made.copies.reduce((sum, copy) => sum + copy.bytes, 0);
      return made.copies.length > 0 ? { outcome: 'made', bytes: stored } : none;
    } catch (error) {
      this.failed.set(record.storageKey, true);
      await this.deps.storage.delete(written).catch(() => undefined);
      if ((error as { code?: string }).code === 'OVERLOADED') return { outcome: 'dropped', bytes: 0 };
      this.deps.log.warn({ err: error, id: record.id }, 'making working copies failed; the original serves meanwhile');
      return { outcome: 'failed', bytes: 0 };
    } finally {
      this.making.delete(record.storageKey);
    }
  }

  /** A copy is missing or does not decode: forget it, so renders read the original, and make it again. */
  async remake(record: OriginalRecord, reason: unknown): Promise<void> {
    this.deps.log.warn({ err: reason, id: record.id }, 'a working copy is missing or corrupt; rendering from the original and making it again');
    const undecided = { ...record, copies: null };
    if (!(await this.deps.store.setCopies(record.id, record.generation, null, record.jpegQuality).catch(() => false))) return;
    this.deps.originals.remember(undecided);
    await this.deps.storage.delete((record.copies ?? []).map((copy) => copy.storageKey)).catch(() => undefined);
    void this.make(undecided, true);
  }

  private options(level: PlannedLevel, format: 'jpeg' | 'png'): RenderOptions {
    return {
      width: level.width,
      height: level.height,
      fit: 'clip',
      format,
      quality: COPY_QUALITY,
      workingCopy: true,
      maxInputPixels: this.settings.maxInputPixels,
      maxPages: this.settings.maxPages,
      timeoutMs: this.settings.timeoutMs,
    };
  }
}

/** A copy that is gone or does not decode, as opposed to a render that failed for another reason. */
export function isBrokenCopy(error: unknown): boolean {
  const code = (error as ImageError | null)?.code;
  return code === 'NOT_FOUND' || code === 'CORRUPT_IMAGE' || code === 'CORRUPT_ORIGINAL' || code === 'UNSUPPORTED_FORMAT';
}
