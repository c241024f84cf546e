/**
 * A pool thread: runs the synchronous addon calls. Errors are returned as
 * plain data because structured cloning drops an Error's `code`. Buffers move
 * both ways as transfers, never copies.
 */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { toImageError } from '../errors.js';
import { prepareOriginal, probe, renderNormalized, summariseOriginal } from './engine.js';
import { native } from './native.js';
import type { WorkerReply, WorkerTask } from './protocol.js';

// Threads per image is a process-wide libvips setting; every thread sets the same value.
const concurrency = (workerData as { vipsConcurrency?: number } | undefined)?.vipsConcurrency ?? 1;
native().setConcurrency(concurrency);

/** Wraps a reply so that piscina transfers its buffers instead of cloning them. */
class Movable {
  constructor(
    private readonly reply: WorkerReply,
    private readonly transfer: ArrayBuffer[],
  ) {}
  get [transferableSymbol](): ArrayBuffer[] {
    return this.transfer;
  }
  get [valueSymbol](): WorkerReply {
    return this.reply;
  }
}

function run(task: WorkerTask): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  switch (task.op) {
    case 'ping':
      return { reply: { ok: true, op: 'ping', value: null }, transfer: [] };
    case 'render': {
      const value = renderNormalized(task.input, task.options);
      return { reply: { ok: true, op: 'render', value }, transfer: [value.data] };
    }
    case 'probe':
      return { reply: { ok: true, op: 'probe', value: probe(task.input) }, transfer: [] };
    case 'summarise':
      return { reply: { ok: true, op: 'summarise', value: summariseOriginal(task.input, task.options) }, transfer: [] };
    case 'prepare': {
      const value = prepareOriginal(task.input, task.options);
      const data = value.data.byteOffset === 0 && value.data.byteLength === value.data.buffer.byteLength
        ? value.data
        : value.data.slice();
      return { reply: { ok: true, op: 'prepare', value: { ...value, data } }, transfer: [data.buffer as ArrayBuffer] };
    }
  }
}

/** The piscina task handler. */
export default function handle(task: WorkerTask): unknown {
  try {
    const { reply, transfer } = run(task);
    return move(new Movable(reply, transfer) as unknown as ArrayBuffer);
  } catch (error) {
    const coded = toImageError(error);
    return { ok: false, error: { code: coded.code, message: coded.message, detail: coded.detail } } satisfies WorkerReply;
  }
}
