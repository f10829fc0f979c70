/**
 * How long each job waited and ran, as the producer CLI's `--wait` summary reports it: from the
 * job's lifecycle changes, summed over requeues and suspensions.
 *
 * @module
 */

/** The changes that make a job run again. */
const RUNS: ReadonlySet<string> = new Set(["started", "resumed"]);
/** The changes that stop a running job without ending it. */
const PAUSES: ReadonlySet<string> = new Set(["evicted", "requeued", "suspended", "queued"]);

/** Per-priority figures of a {@linkcode JobTimes}. */
export interface PriorityTimes {
  /** The priority. */
  priority: number;
  /** Jobs of this priority that ended. */
  finished: number;
  /** Of those, how many were seen starting (only these have times). */
  started: number;
  /** Mean time not running (queued, requeued, suspended), submission to outcome, ms. */
  meanWaitMs: number;
  /** Mean time running, summed over every attempt, ms. */
  meanRunMs: number;
}

interface Open {
  running: boolean;
  since: number;
  started: boolean;
  waitMs: number;
  runMs: number;
}

/**
 * Sums each job's time waiting and time running from its lifecycle changes: `started` and
 * `resumed` begin a run; `evicted`, `requeued`, `suspended` and `queued` end it; the outcome ends
 * the job. A job waits from its submission, so wait + run = submission to outcome.
 *
 * @example
 * ```ts
 * import { JobTimes } from "./job_times.ts";
 * const times = new JobTimes();
 * times.change("a", "started", 0, 100); // submitted at 0, started at 100
 * times.change("a", "requeued", 0, 300);
 * times.change("a", "started", 0, 10_300);
 * times.finish("a", 5, 0, 11_300);
 * console.log(times.byPriority()[0]?.meanWaitMs); // 10100
 * ```
 */
export class JobTimes {
  #open = new Map<string, Open>();
  #done = new Map<number, { finished: number; started: number; waitMs: number; runMs: number }>();

  /**
   * Takes one lifecycle change of a job.
   *
   * @param id The job's id.
   * @param change The change: `started`, `requeued`, ….
   * @param submittedAt When it was submitted (epoch ms).
   * @param now When the change was heard (epoch ms).
   */
  change(id: string, change: string, submittedAt: number, now: number): void {
    const open = this.#get(id, submittedAt);
    if (RUNS.has(change) && !open.running) {
      open.waitMs += now - open.since;
      open.running = open.started = true;
      open.since = now;
    } else if (PAUSES.has(change) && open.running) {
      open.runMs += now - open.since;
      open.running = false;
      open.since = now;
    }
  }

  /**
   * Ends a job: its last segment counts, and its times join its priority's figures.
   *
   * @param id The job's id.
   * @param priority Its priority.
   * @param submittedAt When it was submitted (epoch ms).
   * @param now When its outcome was heard (epoch ms).
   */
  finish(id: string, priority: number, submittedAt: number, now: number): void {
    const open = this.#get(id, submittedAt);
    this.#open.delete(id);
    if (open.running) open.runMs += now - open.since;
    else open.waitMs += now - open.since;
    const done = this.#done.get(priority) ?? { finished: 0, started: 0, waitMs: 0, runMs: 0 };
    done.finished++;
    if (open.started) {
      done.started++;
      done.waitMs += open.waitMs;
      done.runMs += open.runMs;
    }
    this.#done.set(priority, done);
  }

  /**
   * The figures by priority, most urgent first.
   *
   * @returns One entry per priority with an ended job.
   */
  byPriority(): PriorityTimes[] {
    return [...this.#done].sort(([a], [b]) => a - b).map(([priority, d]) => ({
      priority,
      finished: d.finished,
      started: d.started,
      meanWaitMs: d.started ? d.waitMs / d.started : 0,
      meanRunMs: d.started ? d.runMs / d.started : 0,
    }));
  }

  /**
   * How long a job still going has waited so far, summed over its waits up to its last change.
   *
   * @param id The job's id.
   * @returns The time waited, ms (0 for a job not heard of, or ended).
   */
  waitedMs(id: string): number {
    return this.#open.get(id)?.waitMs ?? 0;
  }

  #get(id: string, submittedAt: number): Open {
    let open = this.#open.get(id);
    if (open === undefined) {
      open = { running: false, since: submittedAt, started: false, waitMs: 0, runMs: 0 };
      this.#open.set(id, open);
    }
    return open;
  }
}
