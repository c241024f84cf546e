/**
 * The messages between the cluster primary and its workers over the IPC
 * channel: a worker's readiness, the drain, and the fan-out of a delete
 * (every worker forgets an id before the deleter answers). The channel
 * carries admission's `adm:` messages (admission/protocol.ts) and the
 * metrics' `iaas:metrics-`/`iaas:snapshot-` ones (metrics-cluster.ts) too,
 * so each side hears only what the guards below accept.
 */

/** A worker deleted (or re-focused) `id`: the others drop what they remember of it. `key` names the exchange. */
export interface ForgetMessage {
  type: 'iaas:forget';
  id: string;
  key: string;
}

/** A worker has forgotten the id of the exchange `key`; relayed to the deleter once all have. */
export interface ForgottenMessage {
  type: 'iaas:forgotten';
  key: string;
}

/** What a worker tells the primary. */
export type ToPrimary = { type: 'ready'; port: number } | ForgetMessage | ForgottenMessage;

/** What the primary tells a worker. */
export type ToWorker = { type: 'shutdown' } | ForgetMessage | ForgottenMessage;

const TO_PRIMARY: ReadonlySet<string> = new Set<ToPrimary['type']>(['ready', 'iaas:forget', 'iaas:forgotten']);
const TO_WORKER: ReadonlySet<string> = new Set<ToWorker['type']>(['shutdown', 'iaas:forget', 'iaas:forgotten']);

function typeOf(message: unknown): unknown {
  return (message as { type?: unknown } | null)?.type;
}

/** True for a message of this protocol a worker sends (the channel carries others too). */
export function isToPrimary(message: unknown): message is ToPrimary {
  const type = typeOf(message);
  return typeof type === 'string' && TO_PRIMARY.has(type);
}

/** True for a message of this protocol the primary sends (the channel carries others too). */
export function isToWorker(message: unknown): message is ToWorker {
  const type = typeOf(message);
  return typeof type === 'string' && TO_WORKER.has(type);
}
