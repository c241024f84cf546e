/** Ten times capacity for a minute: the long version of overload.test.ts. */
import t from 'tap';
import { assertOverload, startLoadCluster, tenTimesCapacity } from '../load.js';
import { runLong, SKIPPED } from './gate.js';

if (!runLong()) {
  t.comment(SKIPPED);
} else {
  t.test('at ten times capacity for 60 s, accepted renders stay within 3x the unloaded p99, the rest are shed with 503, and the service recovers within 3 s', async (t) => {
    const { cluster, id } = await startLoadCluster(t);
    const report = await tenTimesCapacity(cluster, id, 60_000, 120);
    assertOverload(t, report, cluster);
  });
}
