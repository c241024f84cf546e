/**
 * Progress on stderr: which scenario of how many runs, what it is doing, and
 * an estimate of the seconds left (the current scenario's estimate less the
 * time it has taken, plus the estimates of those still to come).
 */

export interface PlannedScenario {
  name: string;
  /** Estimated seconds, from the settings (measured time plus start-up overheads). */
  estimate: number;
}

export class Progress {
  private index = -1;
  private started = 0;
  private readonly runStarted = performance.now();

  constructor(
    private readonly plan: readonly PlannedScenario[],
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  /** Seconds left by the estimates. */
  secondsLeft(): number {
    const current = this.plan[this.index];
    const inCurrent = current ? Math.max(0, current.estimate - (performance.now() - this.started) / 1000) : 0;
    const later = this.plan.slice(this.index + 1).reduce((sum, s) => sum + s.estimate, 0);
    return Math.round(inCurrent + later);
  }

  /** Seconds since the run began. */
  elapsed(): number {
    return (performance.now() - this.runStarted) / 1000;
  }

  /** Marks the start of the named scenario. */
  begin(name: string): void {
    this.index = this.plan.findIndex((s) => s.name === name);
    this.started = performance.now();
    this.step('starting');
  }

  /** One line: `  95 s  [scenario 3/7 hit] iaas via wrk, round 1/3 (~312 s left)` (time since the start first). */
  step(message: string): void {
    const name = this.plan[this.index]?.name ?? '?';
    this.write(`${this.elapsed().toFixed(0).padStart(4)} s  [scenario ${this.index + 1}/${this.plan.length} ${name}] ${message} (~${this.secondsLeft()} s left)`);
  }

  /** A line without the counters (notes, warnings). */
  note(message: string): void {
    this.write(message);
  }
}
