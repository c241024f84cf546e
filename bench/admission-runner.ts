/**
 * The worker side of `npm run bench:admission`: asks its parent's broker for
 * a slot, releases it at once, and times each round trip; sends the times.
 */
import { AdmissionClient } from '../src/admission/client.js';
import { isAdmissionMessage, type FromBroker } from '../src/admission/protocol.js';

const samples = Number(process.argv[2] ?? 1000);
const client = new AdmissionClient({
  send: (message) => process.send?.(message),
  listen: (handler) => process.on('message', (message: unknown) => isAdmissionMessage(message) && handler(message as FromBroker)),
});

async function once(): Promise<number> {
  const start = process.hrtime.bigint();
  const admission = await client.admit({ priority: 'foreground', client: 'bench', cost: 'render:jpeg:18' });
  if (admission.kind !== 'granted') throw new Error(`expected a grant, got ${admission.kind}`);
  admission.ticket.release({ ms: 40 });
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const warmup = Math.min(1000, samples);
for (let i = 0; i < warmup; i++) await once();
const times: number[] = [];
for (let i = 0; i < samples; i++) times.push(await once());
process.send?.({ times });
