/**
 * A process that renders nothing but asks for render slots like a cluster
 * worker does (AdmissionClient over its IPC channel), on its parent's
 * command: `{ cmd: 'admit', tag, request }` and `{ cmd: 'release', tag }`.
 * It reports `{ ev: 'granted' | 'joined' | 'refused' | 'failed', tag }` and,
 * for a joined request, `{ ev: 'flight', tag, end }`.
 */
import { AdmissionClient } from '../../src/admission/client.js';
import { isAdmissionMessage, type FromBroker } from '../../src/admission/protocol.js';
import type { AdmissionRequest, Ticket } from '../../src/admission/types.js';

type Command = { cmd: 'admit'; tag: string; request: AdmissionRequest } | { cmd: 'release'; tag: string; stored?: boolean };

const client = new AdmissionClient({
  send: (message) => process.send?.(message),
  listen: (handler) => process.on('message', (message: unknown) => isAdmissionMessage(message) && handler(message as FromBroker)),
});
const tickets = new Map<string, Ticket>();

process.on('message', (message: Command) => {
  if (message.cmd === 'admit') {
    void client.admit(message.request).then(async (admission) => {
      if (admission.kind === 'granted') tickets.set(message.tag, admission.ticket);
      process.send?.({ ev: admission.kind, tag: message.tag });
      if (admission.kind === 'joined') process.send?.({ ev: 'flight', tag: message.tag, end: await admission.end });
    });
  }
  if (message.cmd === 'release') {
    const ticket = tickets.get(message.tag);
    ticket?.release({ ms: 10 });
    if (message.stored !== undefined) ticket?.settle(message.stored);
  }
});
process.send?.({ ev: 'ready' });
