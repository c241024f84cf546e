/**
 * GET and HEAD of an image: bounds, the delivery (format by Accept, box by
 * Client Hints), deferred AVIF, the render cache (LRU first), and a live
 * render on a miss, stored after the response. Every answer but a redirect
 * carries its validators (ETag, Last-Modified).
 */
import { LRUCache } from 'lru-cache';
import { ImageError } from '../errors.js';
import { ANIMATED_FORMATS, type UrlFormat, type UrlGravity } from '../options/grammar.js';
import type { VariantRequest } from '../options/parse.js';
import type { RenderOptions } from '../render/options.js';
import type { RenderResult } from '../render/engine.js';
import type { OriginalRecord, WorkingCopy } from '../store/types.js';
import { boundsRedirect, outputPixels } from './bounds.js';
import { deferredHeaders, immutableHeaders, withAfter } from './caching.js';
import { deliveryOf, type Delivery } from './delivery.js';
import { contentTag, originalValidators, variantValidators, type Validators } from './etags.js';
import { cacheKey, contentTypeOf, type VariantSpec } from './keys.js';
import { LRU_TTL_MS, type Originals } from './originals.js';
import { costClass, type Joined, type RenderJob, type Rendered } from './renders.js';
import { chooseCopy, isBrokenCopy, neededScale, type WorkingCopies } from './working-copies.js';
import { SingleFlight } from './single-flight.js';
import { NO_EVENTS, type Headers, type ImageDeps, type ImageReply, type RequestContext } from './types.js';

/** What this process remembers of a stored variant: enough to answer a hit, a HEAD or a revalidation without the index. */
interface Located {
  validators: Validators;
  bytes: number;
}

/** A miss, once its render is settled: the bytes rendered here, or a hit another process made. */
type MissOutcome =
  | { kind: 'rendered'; result: RenderResult; data: Uint8Array; validators: Validators; store?: { run(): Promise<void>; abandon(): void } }
  | { kind: 'cached' };

/** Rendering a stored original that does not decode is our fault, not the client's. */
function asStoredFailure(error: ImageError): ImageError {
  if (error.code !== 'CORRUPT_IMAGE' && error.code !== 'UNSUPPORTED_FORMAT') return error;
  return new ImageError('CORRUPT_ORIGINAL', 'The stored original cannot be decoded', { ...(error.detail ? { detail: error.detail } : {}), cause: error });
}

export class Variants {
  private readonly located: LRUCache<string, Located>;
  private readonly flights = new SingleFlight<MissOutcome>();
  /** Keys of deferred AVIF renders queued by this process: each is queued once, however many clients ask. */
  private readonly deferring = new Set<string>();

  constructor(
    private readonly deps: ImageDeps,
    private readonly originals: Originals,
    private readonly copies: WorkingCopies,
  ) {
    this.located = new LRUCache({ max: Math.max(1, deps.config.lruEntries), ttl: LRU_TTL_MS });
  }

  private get events() {
    return this.deps.events ?? NO_EVENTS;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** Answers a GET or HEAD for a parsed image URL. */
  async get(request: VariantRequest, context: RequestContext): Promise<ImageReply> {
    const original = await this.originals.get(request.id);
    const { constraints, avif } = this.deps.config;
    const outOfBounds = boundsRedirect(request, original, { maxWidth: constraints.maxWidth, maxHeight: constraints.maxHeight, avifMaxPixels: avif.maxPixels }, context.query);
    if (outOfBounds) return outOfBounds;

    const delivery = deliveryOf(this.deps.config, request, original, context.accept, context.hints ?? {});
    const fresh = !!this.deps.config.freshness && context.freshnessToken === this.deps.config.freshness;
    const { format, deferred } = await this.choose(request, original, delivery, fresh);
    const headers: Headers = deferred ? { ...delivery.headers, ...deferredHeaders(this.now(), this.deps.config.formats.deferredMaxAge) } : delivery.headers;
    const reply = await this.answer(request, original, this.specOf(request, format, original, delivery), headers, fresh, context);
    // Queued once this answer is out: no AVIF encode runs before it.
    return deferred && context.method === 'GET' ? withAfter(reply, () => this.defer(original, deferred)) : reply;
  }

  /** The answer in the chosen format: the original itself, a HEAD, a hit, or a render. */
  private async answer(request: VariantRequest, original: OriginalRecord, spec: VariantSpec, headers: Headers, fresh: boolean, context: RequestContext): Promise<ImageReply> {
    // Quality does not apply to PNG: a PNG original with only ?quality is the original itself.
    const filtered = spec.blur > 0 || (request.hasFilters && spec.quality !== 'auto') || request.frames !== undefined;
    if (request.kind === 'original' && !filtered && spec.format === original.format) {
      return this.serveOriginal(original, context, headers);
    }
    if (context.method === 'HEAD') return this.head(spec, headers);
    if (!fresh) {
      const hit = await this.lookup(original, spec, request.proxy, headers, context);
      if (hit) return hit;
    }
    return this.renderMiss(original, spec, headers, fresh, context);
  }

  /**
   * The format to answer in: the delivery's best, unless that is an AVIF not
   * stored yet and AVIF is deferred. Then the next acceptable format answers,
   * and `deferred` is the AVIF to render in the background.
   */
  private async choose(request: VariantRequest, original: OriginalRecord, delivery: Delivery, fresh: boolean): Promise<{ format: UrlFormat; deferred?: VariantSpec }> {
    const [best = request.format, next] = delivery.formats;
    if (best !== 'avif' || next === undefined || fresh || !this.deps.config.formats.avifDeferred) return { format: best };
    const avif = this.specOf(request, 'avif', original, delivery);
    if (await this.locate(cacheKey(this.deps.cache, avif))) return { format: best };
    return { format: next, deferred: avif };
  }

  /** Queues the render of a deferred AVIF at the background priority, once per key in this process; never waits for it. */
  private async defer(original: OriginalRecord, spec: VariantSpec): Promise<void> {
    const key = cacheKey(this.deps.cache, spec);
    if (this.deferring.has(key)) return;
    this.deferring.add(key);
    void this.renderInBackground(original, spec).finally(() => this.deferring.delete(key));
  }

  /** The spec of a request as its URL names it (no negotiation, no hints), for work done without a client. */
  specFor(request: VariantRequest, original: OriginalRecord): VariantSpec {
    return this.specOf(request, request.format, original, { width: request.width * request.scale, height: request.height * request.scale });
  }

  private specOf(request: VariantRequest, format: UrlFormat, original: OriginalRecord, box: { width: number; height: number }): VariantSpec {
    const gravity = this.gravityOf(request, original);
    return {
      id: request.id,
      generation: original.generation,
      width: box.width,
      height: box.height,
      fit: request.fit,
      gravity,
      focus: gravity === 'focus' ? (original.focus ?? null) : null,
      frames: this.framesOf(request, format, original),
      quality: format === 'png' ? 'auto' : request.quality,
      blur: request.blur ? this.deps.config.blurSigma : 0,
      format,
    };
  }

  /**
   * The gravity a crop is rendered with: the one asked for, else the focal point when the
   * original has one; `focus` without one is `centre`. Other fits crop nothing: `centre`.
   */
  private gravityOf(request: VariantRequest, original: OriginalRecord): UrlGravity {
    if (request.kind !== 'variant' || request.fit !== 'crop') return 'centre';
    const gravity = request.gravity ?? (original.focus ? 'focus' : 'centre');
    return gravity === 'focus' && !original.focus ? 'centre' : gravity;
  }

  /** Frames kept: 1 unless an animated source goes to an animated format, then at most animation.max_frames. */
  private framesOf(request: VariantRequest, format: UrlFormat, original: OriginalRecord): number {
    if (!ANIMATED_FORMATS.includes(format) || (original.format !== 'gif' && original.format !== 'webp')) return 1;
    const max = this.deps.config.animation.maxFrames;
    // An original recorded before frame counts were kept may have any number: the addon caps it.
    return Math.max(1, Math.min(max, request.frames ?? max, original.frames ?? max));
  }

  private async serveOriginal(original: OriginalRecord, context: RequestContext, headers: Headers): Promise<ImageReply> {
    const all = { ...immutableHeaders(this.now()), ...headers };
    const contentType = contentTypeOf(original.format);
    const validators = originalValidators(original);
    if (context.method === 'HEAD') return { type: 'head', contentType, size: original.bytes, headers: all, validators };
    const path = this.deps.originals.localPath(original.storageKey);
    if (path) return { type: 'file', path, size: original.bytes, contentType, headers: all, validators };
    return { type: 'bytes', data: await this.originals.bytes(original), contentType, headers: all, validators };
  }

  /** A HEAD of a variant: its size and validators once stored; before, only its type. Nothing is rendered. */
  private async head(spec: VariantSpec, headers: Headers): Promise<ImageReply> {
    const located = await this.locate(cacheKey(this.deps.cache, spec));
    const all = { ...immutableHeaders(this.now()), ...headers };
    const contentType = contentTypeOf(spec.format);
    if (!located) return { type: 'head', contentType, headers: all };
    return { type: 'head', contentType, size: located.bytes, headers: all, validators: located.validators };
  }

  /** Where a variant is known to be stored: this process' memory, else the render index; null when it is not stored. */
  private async locate(key: string): Promise<Located | null> {
    const known = this.located.get(key);
    if (known) return known;
    const row = await this.deps.store.getVariant(key).catch((error: unknown) => {
      // The database is down: render anyway; the original's record came from the LRU.
      if ((error as { code?: string }).code !== 'UNAVAILABLE') throw error;
      this.deps.log.warn({ err: error, key }, 'render index unavailable; rendering without the cache');
      return null;
    });
    if (!row) return null;
    const located = { validators: variantValidators(row), bytes: row.bytes };
    this.located.set(key, located);
    return located;
  }

  // A cached variant: a redirect to S3/the CDN, the bytes (proxy), or the local file.
  private async lookup(original: OriginalRecord, spec: VariantSpec, proxy: boolean, headers: Headers, context: RequestContext): Promise<ImageReply | undefined> {
    const { cache, config } = this.deps;
    const key = cacheKey(cache, spec);
    const located = await this.locate(key);
    if (!located) return undefined;
    const { validators } = located;
    const contentType = contentTypeOf(spec.format);
    const url = cache.publicUrl(key);
    if (url && !proxy) {
      this.events.cache('redirect');
      // The object store answers the target with its own validators; the 303 has none to give.
      return { type: 'redirect', location: url, headers: { 'Cache-Control': `max-age=${config.redirectCacheTimeout}`, ...headers, 'X-Cache': 'HIT' } };
    }
    const hitHeaders = { ...immutableHeaders(this.now()), ...headers, 'X-Cache': 'HIT' };
    const path = cache.localPath(key);
    if (path) {
      this.events.cache('hit');
      // Purged by another process (iaas purge): forget the location and render again.
      const stale = () => {
        this.located.delete(key);
        return this.renderMiss(original, spec, headers, false, context);
      };
      return { type: 'file', path, size: -1, contentType, headers: hitHeaders, validators, stale };
    }
    const data = await cache.get(key);
    if (!data) {
      this.located.delete(key);
      return undefined;
    }
    this.events.cache('hit');
    return { type: 'bytes', data, contentType, headers: hitHeaders, validators };
  }

  /** Options for the pool, from the spec and the configured limits; `from` a working copy, planned on the original's size. */
  private renderOptions(spec: VariantSpec, original?: OriginalRecord, from?: WorkingCopy): RenderOptions {
    const { constraints, pool, avif } = this.deps.config;
    return {
      ...(from && original ? { source: { width: original.width, height: original.height, jpegQuality: original.format === 'jpeg' ? original.jpegQuality : null } } : {}),
      ...(spec.width ? { width: spec.width, height: spec.height } : {}),
      fit: spec.fit,
      gravity: spec.gravity,
      ...(spec.focus ? { focus: spec.focus } : {}),
      frames: spec.frames,
      format: spec.format,
      quality: spec.quality,
      ...(spec.blur ? { blur: { sigma: spec.blur } } : {}),
      maxInputPixels: constraints.maxInputPixels,
      maxPages: constraints.maxPages,
      avifEffort: avif.effort,
      timeoutMs: pool.timeoutMs,
    };
  }

  /** The render of a miss, once per machine: here, or by another process that then stores it. */
  private renderOnce(original: OriginalRecord, spec: VariantSpec, key: string, fresh: boolean, context: RequestContext): Promise<MissOutcome> {
    const pixels = spec.frames * (spec.width ? outputPixels(original.width, original.height, spec.width, spec.height, spec.fit) : original.width * original.height);
    const job = {
      priority: 'foreground' as const,
      client: context.client,
      cost: costClass('render', spec.format, pixels),
      // A fresh render is never shared with, or stored for, anyone else.
      ...(fresh ? {} : { key, joinable: true }),
      ...(context.signal ? { signal: context.signal } : {}),
    };
    const work = async (): Promise<MissOutcome> => {
      const started = performance.now();
      const outcome = await this.renderFromBest(original, spec, job);
      if (outcome.kind === 'joined') {
        if (outcome.end.kind === 'failed') throw new ImageError(outcome.end.code, `The render failed (${outcome.end.code})`);
        // Stored by the process that rendered it: a hit now. Not stored: render here after all.
        if (outcome.end.kind === 'stored') return { kind: 'cached' };
        const again = await this.renderFromBest(original, spec, { ...job, joinable: false });
        if (again.kind !== 'rendered') throw new ImageError('INTERNAL', 'An unjoinable render was joined');
        return this.rendered(original, spec, key, again.result, fresh, again.settle, started);
      }
      return this.rendered(original, spec, key, outcome.result, fresh, outcome.settle, started);
    };
    return fresh ? work() : this.flights.run(key, work).promise;
  }

  /**
   * Renders from the smallest working copy with enough pixels, else from the
   * original. A copy that is gone or does not decode is made again, and this
   * render reads the original instead.
   */
  private async renderFromBest(original: OriginalRecord, spec: VariantSpec, job: RenderJob): Promise<Rendered | Joined> {
    const copy = chooseCopy(original, neededScale(original.width, original.height, spec.width, spec.height, spec.fit));
    if (copy) {
      try {
        const outcome = await this.deps.renders.render(() => this.originals.copyBytes(copy), this.renderOptions(spec, original, copy), { ...job, remember: false });
        this.events.renderSource(`copy-${copy.level}`);
        return outcome;
      } catch (error) {
        if (!isBrokenCopy(error)) throw error;
        void this.copies.remake(original, error);
        job = { ...job, joinable: false };
      }
    }
    const outcome = await this.deps.renders.render(() => this.originals.bytes(original), this.renderOptions(spec), job, asStoredFailure);
    this.events.renderSource('original');
    // An original whose copies were never made (uploaded before them): make them now, after this render.
    if (original.copies === null && this.copies.enabled) void this.copies.make(original);
    return outcome;
  }

  private rendered(original: OriginalRecord, spec: VariantSpec, key: string, result: RenderResult, fresh: boolean, settle: (stored: boolean) => void, started: number): MissOutcome {
    this.events.render(spec.format, spec.fit, (performance.now() - started) / 1000);
    const data = new Uint8Array(result.data);
    // Hashed before the answer, and recorded with the row: the answer's ETag is the stored one.
    const validators = { etag: contentTag(data), lastModified: this.now() };
    if (fresh) {
      settle(false);
      return { kind: 'rendered', result, data, validators };
    }
    let storing: Promise<void> | undefined;
    // Stored once, after the first response that carries it; those who joined from other processes then find it.
    const store = {
      run: () => (storing ??= this.store(key, original, result, data, validators).then(settle)),
      // Nobody was answered (the clients went away): those who joined render for themselves.
      abandon: () => storing === undefined && settle(false),
    };
    return { kind: 'rendered', result, data, validators, store };
  }

  private async renderMiss(original: OriginalRecord, spec: VariantSpec, headers: Headers, fresh: boolean, context: RequestContext): Promise<ImageReply> {
    const key = cacheKey(this.deps.cache, spec);
    const outcome = await this.renderOnce(original, spec, key, fresh, context);
    if (outcome.kind === 'cached') {
      // Stored by another process: its row (and ETag) is in the index.
      this.located.delete(key);
      const hit = await this.lookup(original, spec, false, headers, context);
      if (hit) return hit;
      return this.renderMiss(original, spec, headers, true, context);
    }
    this.events.cache('miss');
    return {
      type: 'bytes',
      data: outcome.data,
      contentType: contentTypeOf(outcome.result.format),
      headers: { ...immutableHeaders(this.now()), ...headers, 'X-Cache': fresh ? 'FRESH' : 'MISS' },
      validators: outcome.validators,
      ...(outcome.store ? { after: outcome.store.run, abandon: outcome.store.abandon } : {}),
    };
  }

  /**
   * After the response: the object first, then the index row (only while the
   * original still has this generation), so a crash leaves at most an orphan
   * object and a render that outlived a DELETE leaves nothing. Resolves true when stored.
   */
  private async store(key: string, original: OriginalRecord, result: RenderResult, data: Uint8Array, validators: Validators): Promise<boolean> {
    const { cache, store, log } = this.deps;
    try {
      await cache.put(key, data, contentTypeOf(result.format));
      const recorded = await store.insertVariant(
        {
          key,
          originalId: original.id,
          format: result.format,
          width: result.width,
          height: result.height,
          bytes: data.byteLength,
          renderedAt: validators.lastModified,
          etag: validators.etag,
        },
        original.generation,
      );
      if (!recorded) {
        // The original was deleted (or replaced) while this rendered: nothing of it may stay.
        await cache.delete([key]);
        log.info({ key }, 'render finished after its original was deleted; discarded');
        return false;
      }
      // Not remembered here: a key stored first by another process has that one's row and ETag.
      this.located.delete(key);
      return true;
    } catch (error) {
      log.warn({ err: error, key }, 'caching a rendered variant failed; it will be rendered again next time');
      return false;
    }
  }

  /**
   * Renders a variant in the background and stores it, at the background
   * priority: it never takes a slot a foreground render waits for, and it is
   * dropped (not queued) while the machine sheds or its queue is full. The
   * one way later features (deferred AVIF, pre-rendering) render ahead of a
   * request. Resolves with what happened; never rejects.
   */
  async renderInBackground(original: OriginalRecord, spec: VariantSpec): Promise<'stored' | 'cached' | 'dropped' | 'failed'> {
    const key = cacheKey(this.deps.cache, spec);
    try {
      if (this.located.has(key) || (await this.deps.store.getVariant(key))) return 'cached';
      const pixels = spec.frames * (spec.width ? outputPixels(original.width, original.height, spec.width, spec.height, spec.fit) : original.width * original.height);
      const started = performance.now();
      const outcome = await this.renderFromBest(original, spec, { priority: 'background', client: 'background', cost: costClass('render', spec.format, pixels), key, joinable: true });
      if (outcome.kind === 'joined') return outcome.end.kind === 'stored' ? 'cached' : 'failed';
      this.events.render(spec.format, spec.fit, (performance.now() - started) / 1000);
      const data = new Uint8Array(outcome.result.data);
      const stored = await this.store(key, original, outcome.result, data, { etag: contentTag(data), lastModified: this.now() });
      outcome.settle(stored);
      return stored ? 'stored' : 'failed';
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'OVERLOADED') {
        this.events.backgroundDropped();
        this.deps.log.info({ key }, 'background render dropped: the machine is shedding or its background queue is full');
        return 'dropped';
      }
      this.deps.log.warn({ err: error, key }, 'background render failed');
      return 'failed';
    }
  }

  /** Forgets every cache location of an original (after a delete or purge). */
  forgetPrefix(id: string): void {
    for (const key of this.located.keys()) {
      if (key.startsWith(`${id}/`) || key.startsWith(`cache/${id}/`)) this.located.delete(key);
    }
  }
}
