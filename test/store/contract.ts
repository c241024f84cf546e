/**
 * The one behaviour both stores promise. sqlite.test.ts and postgres.test.ts
 * run it against their own database; each test uses fresh random ids, so
 * tests never see each other's rows, and date ranges far in the past for
 * the purge tests, which delete by date.
 */
import { createHash } from 'node:crypto';
import type tap from 'tap';
import type { OriginalRecord, Store, VariantRecord } from '../../src/store/index.js';
import { TOKEN_LEASE_MS } from '../../src/images/tokens.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { unique } from '../helpers/fixtures.js';

/** Every migration version, in order: what schema_migrations holds after migrate(). */
export const VERSIONS = MIGRATIONS.map((migration) => migration.version);


/** A tap test (the root `t` or a subtest). */
export type TapTest = Parameters<Parameters<typeof tap.test>[0]>[0];

/** Raw SQL on the store's database, through the driver directly (no parameters). */
export type RawSql = (text: string) => Promise<{ rows: Record<string, unknown>[]; changes: number }>;

const MINUTE = 60_000;

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function original(id: string, overrides: Partial<OriginalRecord> = {}): OriginalRecord {
  return {
    id,
    format: 'jpeg',
    width: 800,
    height: 600,
    bytes: 123_456,
    storageKey: `originals/${id}`,
    uploadedAt: new Date('2024-05-06T07:08:09.123Z'),
    generation: GENERATION,
    jpegQuality: 88,
    copies: null,
    frames: 1,
    focus: null,
    summary: null,
    ...overrides,
  };
}

/** The generation of the originals these tests record. */
const GENERATION = 'g0a1b2c3d4e5';

function variant(
  key: string,
  originalId: string,
  renderedAt: Date,
  overrides: Partial<VariantRecord> = {},
): VariantRecord {
  return { key, originalId, format: 'webp', width: 200, height: 150, bytes: 4_321, renderedAt, etag: null, ...overrides };
}

/** How a store call ends: 'resolved', or the `code` of any error it rejects with (a driver's too), or 'no code'. */
export async function outcomeCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : 'no code';
  }
}

/**
 * Runs the contract. `makeStore` opens a store on the database under test
 * (the contract migrates and closes it); `sql` reaches the same database
 * without the store, to check what is stored and the documented raw purge.
 */
export function storeContract(t: TapTest, makeStore: () => Promise<Store>, sql: RawSql): void {
  async function open(t: TapTest): Promise<Store> {
    const store = await makeStore();
    t.teardown(() => store.close());
    await store.migrate();
    return store;
  }

  async function issued(store: Store, expiresAt = new Date(Date.now() + MINUTE)) {
    const id = unique('img');
    const digest = digestOf(unique('token'));
    if ((await store.issueToken(id, digest, expiresAt, new Date())) !== 'issued') throw new Error('setup: token not issued');
    return { id, digest };
  }

  t.test('migrates twice without harm and then answers a ping', async (t) => {
    const store = await open(t);
    await store.migrate();
    await t.resolves(store.ping());
    const { rows } = await sql('SELECT version FROM schema_migrations ORDER BY version');
    t.same(
      rows.map((row) => Number(row.version)),
      VERSIONS,
      'each migration recorded once',
    );
  });

  t.test('records an original and reads back the same fields', async (t) => {
    const store = await open(t);
    const record = original(unique('img'), { bytes: 5_000_000_000 });
    await store.insertOriginal(record);
    t.same(await store.getOriginal(record.id), record);
    t.equal(await store.getOriginal(unique('missing')), null);
  });

  t.test('refuses a second original with the same id, without calling it UNAVAILABLE', async (t) => {
    const store = await open(t);
    const record = original(unique('img'));
    await store.insertOriginal(record);
    const code = await outcomeCode(store.insertOriginal(original(record.id, { width: 1 })));
    t.not(code, 'resolved');
    t.not(code, 'UNAVAILABLE');
    t.equal((await store.getOriginal(record.id))?.width, 800, 'the first record is kept');
  });

  t.test('issues a token once per id', async (t) => {
    const store = await open(t);
    const { id } = await issued(store);
    t.equal(await store.issueToken(id, digestOf('another'), new Date(Date.now() + MINUTE), new Date()), 'exists');
  });

  t.test('refuses a token for an id that already has an original', async (t) => {
    const store = await open(t);
    const record = original(unique('img'));
    await store.insertOriginal(record);
    t.equal(await store.issueToken(record.id, digestOf('x'), new Date(Date.now() + MINUTE), new Date()), 'exists');
  });

  t.test('issues the token to exactly one of 20 concurrent issuers', async (t) => {
    const store = await open(t);
    const id = unique('img');
    const expiresAt = new Date(Date.now() + MINUTE);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.issueToken(id, digestOf(`token-${i}`), expiresAt, new Date())),
    );
    t.equal(results.filter((result) => result === 'issued').length, 1);
  });

  t.test('stores a token as its 32-byte digest and refuses any other length', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    const { rows } = await sql(`SELECT digest FROM tokens WHERE id = '${id}'`);
    const stored = rows[0]?.digest;
    t.ok(Buffer.isBuffer(stored) && stored.equals(digest), 'the digest is stored as bytes');
    const code = await outcomeCode(store.issueToken(unique('img'), Buffer.alloc(31), new Date(Date.now() + MINUTE), new Date()));
    t.not(code, 'resolved');
    t.not(code, 'UNAVAILABLE');
  });

  t.test('consumes a token once with the right digest', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
    t.equal(await store.consumeToken(id, digest, new Date()), false, 'a used token is refused');
  });

  t.test('gives exactly one of 50 concurrent consumers the token', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    const now = new Date();
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeToken(id, digest, now)));
    t.equal(results.filter(Boolean).length, 1);
  });

  t.test('refuses a wrong digest and an unknown id', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digestOf('wrong'), new Date()), false);
    t.equal(await store.consumeToken(unique('img'), digest, new Date()), false);
    t.equal(await store.consumeToken(id, digest, new Date()), true, 'the token is still usable');
  });

  t.test('refuses a token at and after its expiry', async (t) => {
    const store = await open(t);
    const expiresAt = new Date(Date.now() + MINUTE);
    const { id, digest } = await issued(store, expiresAt);
    t.equal(await store.consumeToken(id, digest, new Date(expiresAt.getTime() + 1)), false);
    t.equal(await store.consumeToken(id, digest, expiresAt), false, 'expiry is exclusive');
    t.equal(await store.consumeToken(id, digest, new Date(expiresAt.getTime() - 1)), true);
  });

  t.test('lets a released token be consumed again', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
    await store.releaseToken(id, digest);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
  });

  t.test('frees a token whose upload never completed once its lease ran out (a crashed upload)', async (t) => {
    const store = await open(t);
    const consumedAt = new Date();
    const { id, digest } = await issued(store, new Date(consumedAt.getTime() + TOKEN_LEASE_MS + 10 * MINUTE));
    t.equal(await store.consumeToken(id, digest, consumedAt), true);
    t.equal(await store.consumeToken(id, digest, new Date(consumedAt.getTime() + TOKEN_LEASE_MS - 1000)), false, 'locked during the lease');
    t.equal(await store.consumeToken(id, digest, new Date(consumedAt.getTime() + TOKEN_LEASE_MS + 1000)), true, 'free after it');
    await store.completeToken(id, digest, new Date());
    t.equal(await store.consumeToken(id, digest, new Date(consumedAt.getTime() + 2 * TOKEN_LEASE_MS)), false, 'never after completion');
  });

  t.test('refuses a token once its id has an original, even after the lease', async (t) => {
    const store = await open(t);
    const consumedAt = new Date();
    const { id, digest } = await issued(store, new Date(consumedAt.getTime() + TOKEN_LEASE_MS + 10 * MINUTE));
    t.equal(await store.consumeToken(id, digest, consumedAt), true);
    await store.insertOriginal({ id, format: 'jpeg', width: 1, height: 1, bytes: 1, storageKey: id, uploadedAt: consumedAt, generation: '', jpegQuality: null, copies: null });
    t.equal(await store.consumeToken(id, digest, new Date(consumedAt.getTime() + TOKEN_LEASE_MS + 1000)), false);
  });

  t.test('ignores a release with the wrong digest', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
    await store.releaseToken(id, digestOf('wrong'));
    t.equal(await store.consumeToken(id, digest, new Date()), false);
  });

  t.test('never releases a token whose upload completed', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
    await store.completeToken(id, digest, new Date());
    await store.releaseToken(id, digest);
    t.equal(await store.consumeToken(id, digest, new Date()), false);
    const { rows } = await sql(`SELECT uploaded_at FROM tokens WHERE id = '${id}'`);
    t.ok(rows[0]?.uploaded_at != null, 'uploaded_at is set');
  });

  t.test('deletes an original with its token and variants, after which the id can be issued again', async (t) => {
    const store = await open(t);
    const { id, digest } = await issued(store);
    t.equal(await store.consumeToken(id, digest, new Date()), true);
    await store.insertOriginal(original(id));
    await store.completeToken(id, digest, new Date());
    const keys = [`${id}/b`, `${id}/a`, `${id}/c`];
    for (const key of keys) await store.insertVariant(variant(key, id, new Date()), GENERATION);
    const other = unique('img');
    await store.insertOriginal(original(other));
    await store.insertVariant(variant(`${other}/a`, other, new Date()), GENERATION);

    t.same(await store.deleteOriginal(id), { deleted: true, variantKeys: [...keys].sort() });
    t.equal(await store.getOriginal(id), null);
    t.equal(await store.getVariant(`${id}/a`), null);
    t.not(await store.getVariant(`${other}/a`), null, "another original's variants stay");
    t.equal(await store.issueToken(id, digestOf('again'), new Date(Date.now() + MINUTE), new Date()), 'issued');
    t.same(await store.deleteOriginal(id), { deleted: false, variantKeys: [] }, 'a token alone is not an original');
    const third = await store.issueToken(id, digestOf('third'), new Date(Date.now() + MINUTE), new Date());
    t.equal(third, 'issued', 'but it is removed');
    await store.deleteOriginal(other);
  });

  t.test('keeps the first variant when the same key is inserted twice', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal(original(id));
    const first = variant(`${id}/w200`, id, new Date('2024-01-02T03:04:05.678Z'), { bytes: 5_000_000_000, etag: '"vfirst"' });
    await store.insertVariant(first, GENERATION);
    await t.resolves(store.insertVariant({ ...first, width: 1, renderedAt: new Date(), etag: '"vsecond"' }, GENERATION));
    t.same(await store.getVariant(first.key), first, 'the first row, its ETag included');
    t.equal(await store.getVariant(unique('missing')), null);
    await store.deleteOriginal(id);
  });

  t.test('deletes the variants of one original and returns their keys', async (t) => {
    const store = await open(t);
    const id = unique('img');
    const other = unique('img');
    await store.insertOriginal(original(id));
    await store.insertOriginal(original(other));
    await store.insertVariant(variant(`${id}/2`, id, new Date()), GENERATION);
    await store.insertVariant(variant(`${id}/1`, id, new Date()), GENERATION);
    await store.insertVariant(variant(`${other}/1`, other, new Date()), GENERATION);
    t.same(await store.deleteVariantsOf(id), [`${id}/1`, `${id}/2`]);
    t.same(await store.deleteVariantsOf(id), []);
    t.same(await store.deleteVariantsOf(other), [`${other}/1`]);
    t.not(await store.getOriginal(id), null, 'the originals stay');
    await store.deleteOriginal(id);
    await store.deleteOriginal(other);
  });

  t.test('deletes only the variants of an original whose key matches', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal(original(id));
    for (const key of [`${id}/g/100x100-crop-q80-b0.jpg`, `${id}/g/100x100-clip-q80-b0.jpg`, `${id}/g/50x50-crop-gnorth-q80-b0.jpg`]) {
      await store.insertVariant(variant(key, id, new Date()), GENERATION);
    }
    t.same(await store.deleteVariantsOf(id, (key) => key.includes('-crop-')), [`${id}/g/100x100-crop-q80-b0.jpg`, `${id}/g/50x50-crop-gnorth-q80-b0.jpg`]);
    t.not(await store.getVariant(`${id}/g/100x100-clip-q80-b0.jpg`), null, 'a key that does not match stays');
    t.same(await store.deleteVariantsOf(id, () => true), [`${id}/g/100x100-clip-q80-b0.jpg`]);
    await store.deleteOriginal(id);
  });

  t.test('records an original with its focal point, frames and summary, and reads them back', async (t) => {
    const store = await open(t);
    const id = unique('img');
    const summary = { dominant: '#102030', blurhash: 'LEHV6nWB2yk8pyo0adR*.7kCMdnj', lqip: 'data:image/webp;base64,UklGRg==' };
    const record = original(id, { frames: 12, focus: { x: 10, y: 20 }, summary });
    await store.insertOriginal(record);
    t.same(await store.getOriginal(id), record);
    await store.deleteOriginal(id);
  });

  t.test('changes a focal point only while the original exists with that generation', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal(original(id));
    t.equal(await store.setFocus(id, GENERATION, { x: 5, y: 6 }), true);
    t.same((await store.getOriginal(id))?.focus, { x: 5, y: 6 });
    t.equal(await store.setFocus(id, GENERATION, null), true, 'null removes it');
    t.equal((await store.getOriginal(id))?.focus, null);
    t.equal(await store.setFocus(id, 'another', { x: 1, y: 1 }), false, 'another generation is not changed');
    t.equal(await store.setFocus(unique('none'), GENERATION, { x: 1, y: 1 }), false, 'nor an unknown id');
    await store.deleteOriginal(id);
  });

  t.test('gives an original recorded without a summary one later, for that generation only', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal({ id, format: 'gif', width: 4, height: 3, bytes: 9, storageKey: id, uploadedAt: new Date('2024-01-01T00:00:00.000Z'), generation: GENERATION, jpegQuality: null, copies: null });
    const before = await store.getOriginal(id);
    t.equal(before?.summary, null, 'an original recorded before summaries has none');
    t.equal(before?.frames, null, 'nor a frame count');
    const summary = { dominant: '#ffffff', blurhash: 'L00000fQfQfQfQfQfQfQfQfQfQfQ', lqip: 'data:image/webp;base64,AA==' };
    t.equal(await store.setSummary(id, 'another', 3, summary), false, 'another generation is not changed');
    t.equal(await store.setSummary(id, GENERATION, 3, summary), true);
    const after = await store.getOriginal(id);
    t.same([after?.frames, after?.summary], [3, summary]);
    await store.deleteOriginal(id);
  });

  t.test('purges variants rendered before a date, oldest first, up to the limit', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal(original(id));
    const day = (n: number) => new Date(Date.UTC(1990, 0, 1 + n, 12));
    for (const n of [3, 0, 4, 1, 2]) await store.insertVariant(variant(`${id}/day${n}`, id, day(n)), GENERATION);
    await store.insertVariant(variant(`${id}/later`, id, new Date(Date.UTC(1990, 2, 1))), GENERATION);
    const cutoff = new Date(Date.UTC(1990, 1, 1));

    t.same(await store.purgeVariantsBefore(cutoff, 0), [], 'limit 0 purges nothing');
    const first = await store.purgeVariantsBefore(cutoff, 2);
    t.same(first, [variant(`${id}/day0`, id, day(0)), variant(`${id}/day1`, id, day(1))]);
    const rest = await store.purgeVariantsBefore(cutoff, 10);
    t.same(
      rest.map((record) => record.key),
      [`${id}/day2`, `${id}/day3`, `${id}/day4`],
    );
    t.same(await store.purgeVariantsBefore(cutoff, 10), []);
    t.not(await store.getVariant(`${id}/later`), null, 'a variant rendered after the date stays');
    t.same(await store.deleteVariantsOf(id), [`${id}/later`]);
    await store.deleteOriginal(id);
  });

  t.test('keeps the documented raw purge DELETE FROM images WHERE rendered_at < date working', async (t) => {
    const store = await open(t);
    const id = unique('img');
    await store.insertOriginal(original(id));
    await store.insertVariant(variant(`${id}/jan10`, id, new Date('1980-01-10T00:00:00.000Z')), GENERATION);
    await store.insertVariant(variant(`${id}/jan20`, id, new Date('1980-01-20T23:59:59.999Z')), GENERATION);
    await store.insertVariant(variant(`${id}/mar01`, id, new Date('1980-03-01T10:00:00.000Z')), GENERATION);
    const full = await sql(`DELETE FROM images WHERE rendered_at < '1980-02-01T00:00:00.000Z'`);
    t.equal(full.changes, 2, 'an ISO timestamp literal');
    t.not(await store.getVariant(`${id}/mar01`), null);
    const dateOnly = await sql(`DELETE FROM images WHERE rendered_at < '1980-03-02'`);
    t.equal(dateOnly.changes, 1, 'a date-only literal');
    t.same(await store.deleteVariantsOf(id), []);
    await store.deleteOriginal(id);
  });

  t.test('replaces a token that expired unused, so its id can be asked for again', async (t) => {
    const store = await open(t);
    const expiresAt = new Date(Date.now() + MINUTE);
    const { id, digest } = await issued(store, expiresAt);
    t.equal(await store.issueToken(id, digestOf('early'), new Date(Date.now() + 2 * MINUTE), new Date(expiresAt.getTime() - 1)), 'exists', 'refused while the first is live');
    const later = new Date(expiresAt.getTime() + 1);
    const fresh = digestOf(unique('fresh'));
    t.equal(await store.issueToken(id, fresh, new Date(later.getTime() + MINUTE), later), 'issued', 'issued once the first expired');
    t.equal(await store.consumeToken(id, digest, later), false, 'the expired token stays dead');
    t.equal(await store.consumeToken(id, fresh, later), true, 'the new token uploads');
  });

  t.test('never replaces a token whose upload holds its lease, or completed', async (t) => {
    const store = await open(t);
    const expiresAt = new Date(Date.now() + MINUTE);
    const { id, digest } = await issued(store, expiresAt);
    const consumedAt = new Date(expiresAt.getTime() - 1000);
    t.equal(await store.consumeToken(id, digest, consumedAt), true);
    t.equal(await store.issueToken(id, digestOf('x'), new Date(expiresAt.getTime() + MINUTE), new Date(expiresAt.getTime() + 1000)), 'exists', 'an upload in progress keeps its id');
    const afterLease = new Date(consumedAt.getTime() + TOKEN_LEASE_MS + 1000);
    t.equal(await store.issueToken(id, digestOf('y'), new Date(afterLease.getTime() + MINUTE), afterLease), 'issued', 'a crashed upload frees it after the lease');
    const done = await issued(store);
    t.equal(await store.consumeToken(done.id, done.digest, new Date()), true);
    await store.completeToken(done.id, done.digest, new Date());
    t.equal(await store.issueToken(done.id, digestOf('z'), new Date(Date.now() + 3 * MINUTE), new Date(Date.now() + 2 * MINUTE)), 'exists', 'a completed upload keeps it');
  });

  t.test('records a variant only while its original exists with that generation', async (t) => {
    const store = await open(t);
    const id = unique('img');
    t.equal(await store.insertVariant(variant(`${id}/a`, id, new Date()), GENERATION), false, 'no original');
    t.equal(await store.getVariant(`${id}/a`), null);
    await store.insertOriginal(original(id));
    t.equal(await store.insertVariant(variant(`${id}/b`, id, new Date()), 'another'), false, 'another generation');
    t.equal(await store.insertVariant(variant(`${id}/c`, id, new Date()), GENERATION), true, 'the current generation');
    t.equal(await store.insertVariant(variant(`${id}/c`, id, new Date()), GENERATION), true, 'again: kept, still current');
    t.same(await store.deleteOriginal(id), { deleted: true, variantKeys: [`${id}/c`] });
  });

  t.test('leaves no variant row behind when inserts race a delete of their original', async (t) => {
    const store = await open(t);
    for (let round = 0; round < 5; round++) {
      const id = unique('race');
      await store.insertOriginal(original(id));
      const inserts = Array.from({ length: 20 }, (_, i) => store.insertVariant(variant(`${id}/v${i}`, id, new Date()), GENERATION));
      const deleted = store.deleteOriginal(id);
      const [outcomes, removal] = await Promise.all([Promise.all(inserts), deleted]);
      const kept = outcomes.filter(Boolean).length;
      t.equal(removal.variantKeys.length, kept, `round ${round}: every insert that succeeded was removed by the delete (${kept})`);
      const { rows } = await sql(`SELECT key FROM images WHERE original_id = '${id}'`);
      t.same(rows, [], `round ${round}: no row is left`);
    }
  });

  t.test('records the working copies of the current generation only, and lists the originals without them', async (t) => {
    const store = await open(t);
    const id = unique('copies');
    await store.insertOriginal(original(id, { uploadedAt: new Date('1970-01-02T00:00:00.000Z') }));
    const waiting = await store.originalsWithoutCopies(1000);
    t.ok(waiting.some((row) => row.id === id && row.generation === GENERATION), 'an original whose copies are not decided is listed');
    const copies = [
      { level: 1, width: 800, height: 600, format: 'jpeg' as const, bytes: 50_000, storageKey: `${id}.${GENERATION}.c1` },
      { level: 2, width: 400, height: 300, format: 'jpeg' as const, bytes: 15_000, storageKey: `${id}.${GENERATION}.c2` },
    ];
    t.equal(await store.setCopies(id, 'another', copies, 75), false, 'not for another generation');
    t.equal(await store.setCopies(id, GENERATION, copies, 75), true);
    t.same(await store.getOriginal(id), original(id, { uploadedAt: new Date('1970-01-02T00:00:00.000Z'), copies, jpegQuality: 75 }), 'read back as written');
    t.notOk((await store.originalsWithoutCopies(1000)).some((row) => row.id === id), 'no longer listed');
    t.equal(await store.setCopies(id, GENERATION, [], null), true, 'none would help: an empty list');
    t.same((await store.getOriginal(id))?.copies, []);
    t.equal(await store.setCopies(id, GENERATION, null, null), true, 'undecided again (a broken copy)');
    t.equal((await store.getOriginal(id))?.copies, null);
    await store.deleteOriginal(id);
    t.equal(await store.setCopies(id, GENERATION, copies, 75), false, 'not once the original is deleted');
  });

  t.test('closes idempotently and then reports UNAVAILABLE', async (t) => {
    const store = await makeStore();
    await store.migrate();
    await store.close();
    await t.resolves(store.close());
    t.equal(await outcomeCode(store.ping()), 'UNAVAILABLE');
    t.equal(await outcomeCode(store.getOriginal('x')), 'UNAVAILABLE');
  });
}
