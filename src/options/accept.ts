/**
 * Reads an `Accept` header as RFC 9110 defines it: media ranges compared
 * case-insensitively, each with an optional weight; `q=0` means "not
 * acceptable". Pure, and browser-safe.
 */

/** True when `accept` names `type` (e.g. `image/webp`) explicitly with a weight above 0; wildcards do not count. */
export function acceptsExplicitly(accept: string, type: string): boolean {
  const wanted = type.toLowerCase();
  for (const range of accept.split(',')) {
    const [media = '', ...params] = range.split(';');
    if (media.trim().toLowerCase() !== wanted) continue;
    let weight = 1;
    for (const param of params) {
      const [name = '', value = ''] = param.split('=');
      if (name.trim().toLowerCase() === 'q') weight = Number(value.trim());
    }
    if (Number.isFinite(weight) && weight > 0) return true;
  }
  return false;
}
