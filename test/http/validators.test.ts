import t from 'tap';
import { isNotModified, matchesNone } from '../../src/http/validators.js';

const validators = { etag: '"vabc"', lastModified: new Date('2026-12-01T10:00:00.700Z') };
const conditions = (ifNoneMatch: string, ifModifiedSince = '') => ({ ifNoneMatch, ifModifiedSince });

t.test('If-None-Match matches a list member, *, or a weak form, never another tag', async (t) => {
  t.ok(matchesNone('"vabc"', '"vabc"'));
  t.ok(matchesNone('"x", "vabc"', '"vabc"'));
  t.ok(matchesNone('W/"vabc"', '"vabc"'));
  t.ok(matchesNone('*', '"vabc"'));
  t.notOk(matchesNone('"vab"', '"vabc"'));
  t.notOk(matchesNone('', '"vabc"'));
});

t.test('If-Modified-Since counts whole seconds and yields to If-None-Match', async (t) => {
  t.ok(isNotModified(conditions('', 'Tue, 01 Dec 2026 10:00:00 GMT'), validators), 'the second Last-Modified was sent as');
  t.notOk(isNotModified(conditions('', 'Tue, 01 Dec 2026 09:59:59 GMT'), validators));
  t.notOk(isNotModified(conditions('', 'not a date'), validators));
  t.notOk(isNotModified(conditions('"other"', 'Tue, 01 Dec 2026 10:00:00 GMT'), validators), 'If-None-Match decides when both are sent');
});
