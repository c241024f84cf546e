/**
 * A worker of the cluster: it boots one server on the shared port, admits
 * its renders through the primary's broker, forgets deleted ids when the
 * primary relays a delete, and tells the primary once it is ready.
 */
import { AdmissionClient } from '../admission/client.js';
import { isAdmissionMessage, type FromBroker } from '../admission/protocol.js';
import type { Config } from '../config/types.js';
import { ImageError } from '../errors.js';
import type { Logger } from '../log.js';
import { createMetrics, routeClass } from '../metrics.js';
import { answerSnapshots, METRICS_CONTENT_TYPE, metricsText } from '../metrics-cluster.js';
import { startServer, type Server } from '../server.js';
import { WorkerDrain } from './drain.js';
import { ForgetRequests } from './forget.js';
import { isToWorker, type ToPrimary } from './protocol.js';

/** Runs one worker until the drain. */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  // Listen for the drain before booting: a replacement worker may be told to stop while it starts.
  const drain = new WorkerDrain(log);
  const forgets = new ForgetRequests();
  // Assigned once booted; the primary may relay a delete before that.
  // eslint-disable-next-line prefer-const
  let server: Server | undefined;
  process.on('message', (message: unknown) => {
    if (!isToWorker(message)) return;
    switch (message.type) {
      case 'shutdown':
        return void drain.stop();
      case 'iaas:forget':
        server?.service.forget(message.id);
        server?.app.forgetFiles();
        process.send?.({ type: 'iaas:forgotten', key: message.key } satisfies ToPrimary);
        return;
      case 'iaas:forgotten':
        return forgets.acknowledged(message.key);
    }
  });

  const metrics = createMetrics();
  answerSnapshots();
  server = await startServer(config, {
    admitter: clusterAdmitter(),
    log,
    events: metrics.events,
    observe: (method, path, status) => metrics.request(routeClass(method, path), status),
    deleted: (id) => forgets.everywhere(id),
    // With METRICS_PORT the primary serves them; otherwise they are public here.
    ...(config.metricsPort === undefined
      ? {
          extraGet: {
            '/metrics': async (exchange) => exchange.send(200, { 'Content-Type': METRICS_CONTENT_TYPE }, await metricsText()),
          },
        }
      : {}),
  });
  metrics.watchPool(server.pool);
  await drain.booted(server);
  process.send?.({ type: 'ready', port: server.port } satisfies ToPrimary);
}

/** The worker's side of the machine-wide admission: the broker lives in the primary. */
function clusterAdmitter(): AdmissionClient {
  return new AdmissionClient({
    send(message) {
      if (!process.send || !process.connected) throw new ImageError('UNAVAILABLE', 'The cluster primary is gone');
      process.send(message);
    },
    listen(handler) {
      process.on('message', (message: unknown) => {
        if (isAdmissionMessage(message)) handler(message as FromBroker);
      });
    },
  });
}
