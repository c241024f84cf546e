/**
 * PATCH /{id} with X-Secret and `{"focus": {"x", "y"}}` or `{"focus": null}`:
 * moves (or removes) an original's focal point and drops its crop renders, as
 * a purge does, so the next crop is rendered around the new point. Nothing
 * else of the original changes.
 */
import { badOption, ImageError } from '../errors.js';
import { checkFocus } from '../render/options.js';
import type { FocusPoint } from '../store/types.js';
import { isCropKey } from './keys.js';
import type { Originals } from './originals.js';
import { purgeVariantsOf } from './purge.js';
import { secretsEqual } from './tokens.js';
import type { ImageDeps } from './types.js';

/** What PATCH answers: the new focal point and how many crop renders were dropped. */
export interface FocusResult {
  focus: FocusPoint | null;
  variants: number;
}

/** Reads `{"focus": {...} | null}`: the only field PATCH takes. */
function focusField(body: unknown, width: number, height: number): FocusPoint | null {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badOption('a JSON object like {"focus": {"x": 10, "y": 20}}', 'body', body);
  const fields = Object.keys(body);
  const unknown = fields.filter((field) => field !== 'focus');
  if (unknown.length > 0) throw badOption('only the field focus', 'body', unknown.join(', '));
  if (!fields.includes('focus')) throw badOption('a focus field', 'body', body);
  const focus = (body as { focus: unknown }).focus;
  return focus === null ? null : checkFocus(focus, width, height);
}

/** Authorised like DELETE: the configured secret, sent as X-Secret. */
export async function changeFocus(deps: ImageDeps, originals: Originals, id: string, secret: string, body: unknown): Promise<FocusResult> {
  const expected = deps.config.secret;
  if (expected === undefined) throw new ImageError('FORBIDDEN', 'Changing images is disabled: no secret is configured');
  if (!secretsEqual(secret, expected)) throw new ImageError('UNAUTHORIZED', 'A valid X-Secret is required');
  const record = await deps.store.getOriginal(id);
  if (!record) throw new ImageError('NOT_FOUND', `No image with id ${id}`);
  const focus = focusField(body, record.width, record.height);
  if (!(await deps.store.setFocus(id, record.generation, focus))) throw new ImageError('NOT_FOUND', `No image with id ${id}`);
  originals.forget(id);
  // After the record changed: a crop rendered meanwhile with the old point has its key.
  const variants = await purgeVariantsOf(deps, id, isCropKey);
  return { focus, variants };
}
