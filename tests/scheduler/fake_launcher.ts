/**
 * A launcher for runner tests: launched jobs end only when the test says so, and record the
 * calls the runner makes on them.
 *
 * @module
 */

import type { JobInfo, LaunchedJob, LaunchOutcome } from "../../scheduler/job.ts";

/** One launch: finish it from the test, inspect what the runner asked of it. */
export class FakeJob implements LaunchedJob {
  /** The job id and attempt it was launched for. */
  readonly id: string;
  /** Which launch of the job this is (1 for the first). */
  readonly attempt: number;
  /** Calls the runner made: "terminate", "suspend", "resume", in order. */
  readonly calls: string[] = [];
  #outcome: LaunchOutcome | undefined;
  #resolve: (outcome: LaunchOutcome) => void;
  #done: Promise<LaunchOutcome>;
  #holdTerminate: boolean;

  constructor(info: JobInfo<unknown>, holdTerminate: boolean) {
    this.id = info.id;
    this.attempt = info.attempts;
    this.#holdTerminate = holdTerminate;
    const { promise, resolve } = Promise.withResolvers<LaunchOutcome>();
    this.#done = promise;
    this.#resolve = resolve;
  }

  /** Whether it has ended. */
  get ended(): boolean {
    return this.#outcome !== undefined;
  }

  /** Ends it with `result` (first call wins). */
  finish(
    result: LaunchOutcome["result"],
    code: number | null = result === "success" ? 0 : 1,
  ): void {
    if (this.#outcome !== undefined) return;
    this.#outcome = { result, code };
    this.#resolve(this.#outcome);
  }

  /** Ends it successfully. */
  succeed(): void {
    this.finish("success", 0);
  }

  wait(): Promise<LaunchOutcome> {
    return this.#done;
  }

  terminate(): Promise<LaunchOutcome> {
    this.calls.push("terminate");
    if (!this.#holdTerminate) this.finish("terminated", null);
    return this.#done;
  }

  suspend(): void {
    this.calls.push("suspend");
  }

  resume(): void {
    this.calls.push("resume");
  }
}

/** Options for {@linkcode FakeLauncher}. */
export interface FakeLauncherOptions {
  /** When true, `terminate()` only records the call; the test ends the job. Default false. */
  holdTerminate?: boolean;
}

/** A launcher whose jobs the test controls. Pass `fake.launch` as the runner's `launch`. */
export class FakeLauncher {
  /** Every launch, in order. */
  readonly launched: FakeJob[] = [];
  /** If set, the next launch throws it (then it is cleared). */
  throwNext: Error | undefined;
  #holdTerminate: boolean;

  constructor(options: FakeLauncherOptions = {}) {
    this.#holdTerminate = options.holdTerminate ?? false;
  }

  /** The launcher function. */
  launch = (info: JobInfo<unknown>): LaunchedJob => {
    if (this.throwNext) {
      const error = this.throwNext;
      this.throwNext = undefined;
      throw error;
    }
    const job = new FakeJob(info, this.#holdTerminate);
    this.launched.push(job);
    return job;
  };

  /** The latest launch of job `id`. */
  last(id: string): FakeJob {
    const job = this.launched.findLast((j) => j.id === id);
    if (job === undefined) throw new Error(`job ${id} was never launched`);
    return job;
  }

  /** Ids of launches that have not ended, in launch order. */
  live(): string[] {
    return this.launched.filter((j) => !j.ended).map((j) => j.id);
  }
}
