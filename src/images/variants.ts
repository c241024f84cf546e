/**
 * GET and HEAD of an image: bounds, WebP negotiation, the render cache
 * (LRU first), and a live render on a miss, stored after the response.
 */
import { LRUCache } from 'lru-cache';
import { ImageError } from '../errors.js';
import { FORMAT_EXTENSION } from '../options/grammar.js';
import type { VariantRequest } from '../options/parse.js';
import type { RenderOptions } from '../render/options.js';
import type { RenderResult } from '../render/engine.js';
import type { OriginalRecord } from '../store/types.js';
import { contentTypeOf, storageKey, variantKey, type VariantSpec } from './keys.js';
import { LRU_TTL_MS, type Originals } from './originals.js';
import { SingleFlight } from './single-flight.js';
import { NO_EVENTS, type Headers, type ImageDeps, type ImageReply, type RequestContext } from './types.js';

const YEAR_SECONDS = 365 * 24 * 3600;

/** Headers of a freshly rendered or cached image: cache forever. */
function immutableHeaders(now: Date): Headers {
  return {
    'Cache-Control': `public, max-age=${YEAR_SECONDS}`,
    Expires: new Date(now.getTime() + YEAR_SECONDS * 1000).toUTCString(),
  };
}

export class Variants {
  private readonly located: LRUCache<string, true>;
  private readonly flights = new SingleFlight<RenderResult>();

  constructor(
    private readonly deps: ImageDeps,
    private readonly originals: Originals,
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
    const outOfBounds = this.boundsRedirect(request, context);
    if (outOfBounds) return outOfBounds;

    const { format, vary } = this.negotiate(request, context.accept);
    const headers: Headers = vary ? { Vary: 'Accept' } : {};
    if (request.kind === 'original' && !request.hasFilters && format === original.format) {
      return this.serveOriginal(original, context, headers);
    }
    const spec = this.specOf(request, format);
    if (context.method === 'HEAD') return { type: 'head', contentType: contentTypeOf(format), headers: { ...headers, ...immutableHeaders(this.now()) } };

    const fresh = !!this.deps.config.freshness && context.freshnessToken === this.deps.config.freshness;
    if (!fresh) {
      const hit = await this.lookup(original, spec, request.proxy, headers);
      if (hit) return hit;
    }
    return this.renderMiss(original, spec, headers, fresh);
  }

  // Too large: send the client to the equivalent in-bounds URL, keeping the aspect ratio.
  private boundsRedirect(request: VariantRequest, context: RequestContext): ImageReply | undefined {
    if (request.kind !== 'variant') return undefined;
    const { maxWidth, maxHeight } = this.deps.config.constraints;
    const width = request.width * request.scale;
    const height = request.height * request.scale;
    if (width <= maxWidth && height <= maxHeight) return undefined;
    const factor = Math.min(maxWidth / width, maxHeight / height);
    const w = Math.max(1, Math.floor(request.width * factor));
    const h = Math.max(1, Math.floor(request.height * factor));
    const scale = request.scale > 1 ? `_${request.scale}x` : '';
    const query = context.query ? `?${context.query}` : '';
    return {
      type: 'redirect',
      location: `/${request.id}_${w}_${h}${scale}.${FORMAT_EXTENSION[request.format]}${query}`,
      headers: { 'X-Redirect-Info': `The requested size ${width}x${height} exceeds the maximum of ${maxWidth}x${maxHeight}` },
    };
  }

  // WebP for clients that accept it, when the config allows; the answer then varies by Accept.
  private negotiate(request: VariantRequest, accept: string): { format: string; vary: boolean } {
    const { allowDynamicSwitch, allowOptIn } = this.deps.config.webp;
    const switching = allowDynamicSwitch || (allowOptIn && request.allowWebp);
    if (!switching || (request.format !== 'jpeg' && request.format !== 'png')) return { format: request.format, vary: false };
    return { format: accept.includes('image/webp') ? 'webp' : request.format, vary: true };
  }

  private specOf(request: VariantRequest, format: string): VariantSpec {
    return {
      id: request.id,
      width: request.width * request.scale,
      height: request.height * request.scale,
      fit: request.fit,
      quality: request.quality,
      blur: request.blur ? this.deps.config.blurSigma : 0,
      format,
    };
  }

  private async serveOriginal(original: OriginalRecord, context: RequestContext, headers: Headers): Promise<ImageReply> {
    const all = { ...headers, ...immutableHeaders(this.now()) };
    const contentType = contentTypeOf(original.format);
    if (context.method === 'HEAD') return { type: 'head', contentType, size: original.bytes, headers: all };
    const path = this.deps.originals.localPath(original.storageKey);
    if (path) return { type: 'file', path, size: original.bytes, contentType, headers: all };
    return { type: 'bytes', data: await this.originals.bytes(original), contentType, headers: all };
  }

  // A cached variant: a redirect to S3/the CDN, the bytes (proxy), or the local file.
  private async lookup(original: OriginalRecord, spec: VariantSpec, proxy: boolean, headers: Headers): Promise<ImageReply | undefined> {
    const { cache, store, config } = this.deps;
    const key = storageKey(cache, 'cache', variantKey(spec));
    if (!this.located.has(key)) {
      const row = await store.getVariant(key).catch((error: unknown) => {
        // The database is down: render anyway; the original's record came from the LRU.
        if ((error as { code?: string }).code !== 'UNAVAILABLE') throw error;
        this.deps.log.warn({ err: error, key }, 'render index unavailable; rendering without the cache');
        return null;
      });
      if (!row) return undefined;
      this.located.set(key, true);
    }
    const contentType = contentTypeOf(spec.format);
    const url = cache.publicUrl(key);
    if (url && !proxy) {
      this.events.cache('redirect');
      return { type: 'redirect', location: url, headers: { ...headers, 'Cache-Control': `max-age=${config.redirectCacheTimeout}`, 'X-Cache': 'HIT' } };
    }
    const hitHeaders = { ...headers, ...immutableHeaders(this.now()), 'X-Cache': 'HIT' };
    const path = cache.localPath(key);
    if (path) {
      this.events.cache('hit');
      // Purged by another process (iaas purge): forget the location and render again.
      const stale = () => {
        this.located.delete(key);
        return this.renderMiss(original, spec, headers, false);
      };
      return { type: 'file', path, size: -1, contentType, headers: hitHeaders, stale };
    }
    const data = await cache.get(key);
    if (!data) {
      this.located.delete(key);
      return undefined;
    }
    this.events.cache('hit');
    return { type: 'bytes', data, contentType, headers: hitHeaders };
  }

  /** Options for the pool, from the spec and the configured limits. */
  private renderOptions(spec: VariantSpec): RenderOptions {
    const { constraints, pool } = this.deps.config;
    return {
      ...(spec.width ? { width: spec.width, height: spec.height } : {}),
      fit: spec.fit as RenderOptions['fit'],
      format: spec.format as RenderOptions['format'],
      quality: spec.quality,
      ...(spec.blur ? { blur: { sigma: spec.blur } } : {}),
      maxInputPixels: constraints.maxInputPixels,
      timeoutMs: pool.timeoutMs,
    };
  }

  private async renderMiss(original: OriginalRecord, spec: VariantSpec, headers: Headers, fresh: boolean): Promise<ImageReply> {
    const key = storageKey(this.deps.cache, 'cache', variantKey(spec));
    const work = async (): Promise<RenderResult> => {
      // Shed load before any I/O: a refused render must cost next to nothing.
      if (!this.deps.pool.hasRoom()) throw new ImageError('OVERLOADED', 'The render queue is full');
      const bytes = await this.originals.bytes(original);
      const started = performance.now();
      const result = await this.deps.pool.render(bytes, this.renderOptions(spec));
      this.events.render(spec.format, spec.fit, (performance.now() - started) / 1000);
      return result;
    };
    // A fresh render is never shared with, or stored for, anyone else.
    const { promise, leader } = fresh ? { promise: work(), leader: false } : this.flights.run(key, work);
    const result = await promise;
    this.events.cache('miss');
    const data = new Uint8Array(result.data);
    return {
      type: 'bytes',
      data,
      contentType: contentTypeOf(result.format),
      headers: { ...headers, ...immutableHeaders(this.now()), 'X-Cache': fresh ? 'FRESH' : 'MISS' },
      ...(leader ? { after: () => this.store(key, original, result, data) } : {}),
    };
  }

  /** After the response: the object first, then the index row, so a crash leaves at most an orphan object. */
  private async store(key: string, original: OriginalRecord, result: RenderResult, data: Uint8Array): Promise<void> {
    const { cache, store, log } = this.deps;
    try {
      await cache.put(key, data, contentTypeOf(result.format));
      await store.insertVariant({
        key,
        originalId: original.id,
        format: result.format,
        width: result.width,
        height: result.height,
        bytes: data.byteLength,
        renderedAt: this.now(),
      });
      this.located.set(key, true);
    } catch (error) {
      log.warn({ err: error, key }, 'caching a rendered variant failed; it will be rendered again next time');
    }
  }

  /** Forgets every cache location of an original (after a delete or purge). */
  forgetPrefix(id: string): void {
    for (const key of this.located.keys()) {
      if (key.startsWith(`${id}/`) || key.startsWith(`cache/${id}/`)) this.located.delete(key);
    }
  }
}
