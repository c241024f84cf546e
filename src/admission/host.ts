/**
 * The broker's side of the channel: each process that renders is one owner;
 * its requests go to the broker, the broker's later answers (a queued grant,
 * the end of a flight) go back to it, and when it dies everything it held
 * returns to the machine.
 */
import { Broker, type BrokerEvent } from './broker.js';
import type { FromBroker, ToBroker } from './protocol.js';
import type { BrokerSettings } from './types.js';

export class BrokerHost {
  readonly broker: Broker;
  private readonly owners = new Map<string, (message: FromBroker) => void>();

  constructor(settings: BrokerSettings, now?: () => number) {
    this.broker = new Broker(settings, (event) => this.route(event), now);
  }

  /** A new process that renders: `send` reaches it. */
  attach(owner: string, send: (message: FromBroker) => void): void {
    this.owners.set(owner, send);
  }

  /** The process is gone (exited or killed): its slots, waiters and flights are released. */
  detach(owner: string): void {
    this.owners.delete(owner);
    this.broker.dropOwner(owner);
  }

  /** Handles one message from `owner`. */
  receive(owner: string, message: ToBroker): void {
    const send = this.owners.get(owner);
    if (!send) return;
    switch (message.type) {
      case 'adm:acquire':
        return send({ type: 'adm:decision', id: message.id, decision: this.broker.acquire(owner, message.id, message.request) });
      case 'adm:release':
        return this.broker.release(owner, message.id, message.outcome);
      case 'adm:settle':
        return this.broker.settle(owner, message.id, message.stored);
      case 'adm:cancel':
        return this.broker.cancel(owner, message.id);
      case 'adm:stats':
        return send({ type: 'adm:stats', id: message.id, stats: this.broker.stats() });
    }
  }

  private route(event: BrokerEvent): void {
    const send = this.owners.get(event.owner);
    if (!send) return;
    if (event.kind === 'grant') send({ type: 'adm:grant', id: event.id });
    else if (event.kind === 'followed') send({ type: 'adm:followed', id: event.id });
    else send({ type: 'adm:flight', id: event.id, end: event.end });
  }
}
