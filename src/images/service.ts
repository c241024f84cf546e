/**
 * The use cases, composed over interfaces: no uWS, no SQL, no AWS in here.
 * The HTTP layer calls these; tests can call them without a server.
 */
import { parseImageRequest, type VariantRequest } from '../options/parse.js';
import { deleteImage } from './delete.js';
import { changeFocus, type FocusResult } from './focus.js';
import { Infos, type InfoReply } from './info.js';
import { Originals } from './originals.js';
import { issueToken } from './tokens.js';
import { NO_EVENTS, type ImageDeps, type ImageReply, type RequestContext } from './types.js';
import { upload, type UploadInput, type UploadResult } from './upload.js';
import { Variants } from './variants.js';
import { WorkingCopies } from './working-copies.js';

export interface ImageService {
  /** GET/HEAD of an image URL. */
  get(request: VariantRequest, context: RequestContext): Promise<ImageReply>;
  /** POST /token. */
  issueToken(body: { id?: unknown; secret?: unknown }): Promise<string>;
  /** POST /{id}: the body is already in a temp file. */
  upload(input: UploadInput): Promise<UploadResult>;
  /** DELETE /{id}. */
  delete(id: string, secret: string): Promise<{ variants: number }>;
  /** GET /{id}.json: the original's size, focal point and placeholders. */
  info(id: string, client: string): Promise<InfoReply>;
  /** PATCH /{id}: a new focal point (or none); the id's crop renders are dropped. */
  changeFocus(id: string, secret: string, body: unknown): Promise<FocusResult>;
  /**
   * Renders the configured `prerender` variants of a just uploaded id in the
   * background (never before its upload was answered). Resolves once each ended.
   */
  prerender(id: string): Promise<void>;
  /** Throws UNAVAILABLE when the database is unreachable. */
  health(): Promise<void>;
  /** Drops what this process remembers of an id (another process deleted it). */
  forget(id: string): void;
  /**
   * Renders a variant at the background priority and stores it (see
   * Variants.renderInBackground): for work done after an answer.
   */
  renderInBackground(request: VariantRequest): Promise<'stored' | 'cached' | 'dropped' | 'failed'>;
  /** Makes the working copies of an original whose copies are not decided yet (see WorkingCopies.make). */
  makeWorkingCopies(id: string): Promise<'made' | 'none' | 'decided' | 'busy' | 'dropped' | 'failed'>;
}

export function createImageService(deps: ImageDeps): ImageService {
  const originals = new Originals(deps.store, deps.originals, deps.config.lruEntries, deps.config.originals.cacheBytes);
  const { constraints, pool, workingCopy } = deps.config;
  const copies = new WorkingCopies(
    {
      enabled: workingCopy.enabled,
      maxSide: workingCopy.maxSide,
      maxWidth: constraints.maxWidth,
      maxHeight: constraints.maxHeight,
      maxInputPixels: constraints.maxInputPixels,
      maxPages: constraints.maxPages,
      timeoutMs: pool.timeoutMs,
    },
    { store: deps.store, storage: deps.originals, renders: deps.renders, originals, log: deps.log, ...(deps.events ? { events: deps.events } : {}) },
  );
  const variants = new Variants(deps, originals, copies);
  const infos = new Infos(deps, originals);
  const events = deps.events ?? NO_EVENTS;
  const tokenDeps = {
    store: deps.store,
    secret: deps.config.secret,
    ttlSeconds: deps.config.tokenTtlSeconds,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  };
  return {
    get: (request, context) => variants.get(request, context),
    issueToken: (body) => issueToken(tokenDeps, body),
    // The working copies and pre-renders follow the 200: the route starts them once it answered.
    upload: (input) => upload(deps, originals, input),
    makeWorkingCopies: async (id) => copies.make(await originals.get(id)),
    async delete(id, secret) {
      const result = await deleteImage(deps, originals, id, secret);
      variants.forgetPrefix(id);
      return result;
    },
    info: (id, client) => infos.get(id, client),
    async changeFocus(id, secret, body) {
      const result = await changeFocus(deps, originals, id, secret, body);
      variants.forgetPrefix(id);
      return result;
    },
    async prerender(id) {
      if (deps.config.prerender.length === 0) return;
      deps.log.info({ id, variants: deps.config.prerender }, 'prerender started');
      const original = await originals.get(id).catch(() => undefined);
      if (!original) return;
      await Promise.all(
        deps.config.prerender.map(async (suffix) => {
          const [path = '', query = ''] = suffix.split('?', 2);
          // Checked when the config was loaded; the id is one an upload just took.
          const request = parseImageRequest(`/${id}${path}`, query);
          const outcome = await variants.renderInBackground(original, variants.specFor(request, original));
          events.prerender(outcome);
        }),
      );
    },
    health: () => deps.store.ping(),
    forget(id) {
      originals.forget(id);
      variants.forgetPrefix(id);
    },
    async renderInBackground(request) {
      const original = await originals.get(request.id);
      return variants.renderInBackground(original, variants.specFor(request, original));
    },
  };
}
