/**
 * The messages between a process that renders and the broker: over the
 * cluster's IPC channel, or handed over in-process. Every message carries the
 * requester's own id for the request, unique within that process.
 */
import type { Decision } from './broker.js';
import type { AdmissionRequest, AdmissionStats, FlightEnd, RenderOutcome } from './types.js';

export type ToBroker =
  | { type: 'adm:acquire'; id: number; request: AdmissionRequest }
  | { type: 'adm:release'; id: number; outcome: RenderOutcome }
  | { type: 'adm:settle'; id: number; stored: boolean }
  | { type: 'adm:cancel'; id: number }
  | { type: 'adm:stats'; id: number };

export type FromBroker =
  | { type: 'adm:decision'; id: number; decision: Decision }
  | { type: 'adm:grant'; id: number }
  | { type: 'adm:flight'; id: number; end: FlightEnd }
  | { type: 'adm:followed'; id: number }
  | { type: 'adm:stats'; id: number; stats: AdmissionStats };

/** One side of a channel: what it sends, and a way to hear the other side. */
export interface Port<Out, In> {
  send(message: Out): void;
  listen(handler: (message: In) => void): void;
}

/** True for a message of this protocol (the IPC channel carries others too). */
export function isAdmissionMessage(message: unknown): message is ToBroker | FromBroker {
  const type = (message as { type?: unknown } | null)?.type;
  return typeof type === 'string' && type.startsWith('adm:');
}
