/**
 * GET /{id}.json: what is known of an original without its bytes: its
 * displayed size, format, size in bytes, upload time, focal point, frame
 * count, dominant colour and placeholders (a BlurHash and a blurred WebP as a
 * data URI). The placeholders are computed at upload; an original recorded
 * before they were kept (or with metadata.at_upload off) gets them on its
 * first request here, in the pool, and they are stored with its record.
 */
import { contentTag } from './etags.js';
import type { ImageSummary, OriginalRecord } from '../store/types.js';
import type { Originals } from './originals.js';
import { SingleFlight } from './single-flight.js';
import type { ImageDeps } from './types.js';

/** What `GET /{id}.json` answers: an original's size and placeholders, to show before its image loads. */
export interface ImageInfo {
  id: string;
  /** Displayed size of the stored original, in pixels. */
  width: number;
  height: number;
  /** The stored format: jpeg, png, gif, webp, avif or tiff. */
  format: string;
  bytes: number;
  /** ISO 8601. */
  uploaded_at: string;
  /** The focal point in the original's pixels, or null. */
  focus: { x: number; y: number } | null;
  /** Frames of an animation; 1 for a still. */
  frames: number;
  /** The most common colour, `#rrggbb`: a flat placeholder. */
  dominant: string;
  /** A BlurHash (decode it with the `blurhash` package). */
  blurhash: string;
  /** A blurred WebP of at most 32 px as a data URI (under 1 KB): usable as an `<img src>` at once. */
  lqip: string;
}

/** The JSON body and its entity tag. */
export interface InfoReply {
  body: string;
  etag: string;
}

function infoOf(record: OriginalRecord, summary: ImageSummary, frames: number): ImageInfo {
  return {
    id: record.id,
    width: record.width,
    height: record.height,
    format: record.format,
    bytes: record.bytes,
    uploaded_at: record.uploadedAt.toISOString(),
    focus: record.focus ?? null,
    frames,
    dominant: summary.dominant,
    blurhash: summary.blurhash,
    lqip: summary.lqip,
  };
}

export class Infos {
  private readonly flights = new SingleFlight<OriginalRecord>();

  constructor(
    private readonly deps: ImageDeps,
    private readonly originals: Originals,
  ) {}

  /** The answer for `id`; NOT_FOUND for an unknown id. */
  async get(id: string, client: string): Promise<InfoReply> {
    let record = await this.originals.get(id);
    if (!record.summary || record.frames == null) {
      const known = record;
      record = await this.flights.run(`${id}/${known.generation}`, () => this.backfill(known, client)).promise;
    }
    const body = JSON.stringify(infoOf(record, record.summary as ImageSummary, record.frames ?? 1));
    // Strong: the bytes of the answer, which change with the focal point or a new upload.
    return { body, etag: contentTag(Buffer.from(body)) };
  }

  /** Computes and stores what an original recorded without a summary lacks. */
  private async backfill(record: OriginalRecord, client: string): Promise<OriginalRecord> {
    const { constraints, pool } = this.deps.config;
    const { frames, summary } = await this.deps.renders.summarise(
      () => this.originals.bytes(record),
      { maxInputPixels: constraints.maxInputPixels, maxPages: constraints.maxPages, timeoutMs: pool.timeoutMs },
      { client, bytes: record.bytes },
    );
    const completed = { ...record, frames, summary };
    // Replaced or deleted meanwhile: answer with what was computed, store nothing.
    if (await this.deps.store.setSummary(record.id, record.generation, frames, summary)) this.originals.remember(completed);
    return completed;
  }
}
