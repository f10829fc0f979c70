/**
 * The `/status` snapshot of a `Dispatcher`, built from its parts: the waiting queue, the
 * schedulers and their jobs, the outcome counts, the jobs kept for schedulers after a restart.
 *
 * @module
 */

import type { BusJob } from "./bus_job.ts";
import type { DispatcherStatus, SchedulerStatus, WaitingJobStatus } from "./dispatcher_types.ts";
import type { JobQueue } from "./job_queue.ts";
import type { PooledScheduler, SchedulerPool } from "./scheduler_pool.ts";

/** How many waiting jobs `/status` lists. */
const STATUS_JOBS = 100;

/** What the snapshot is made of. */
export interface DispatcherParts {
  /** The waiting jobs. */
  queue: JobQueue<BusJob>;
  /** The schedulers. */
  scheds: SchedulerPool<BusJob>;
  /** Final outcomes so far, by state. */
  outcomes: ReadonlyMap<string, number>;
  /** Jobs kept for schedulers after a restart, by scheduler name. */
  recovering: Record<string, number>;
}

/**
 * The snapshot for `/status`.
 *
 * @param parts The dispatcher's parts.
 * @returns The queue by priority and its first 100 jobs, each scheduler and its jobs, outcome
 * counts, the jobs kept for schedulers.
 * @example
 * ```ts
 * import { dispatcherStatus } from "./dispatcher_status.ts";
 * import { JobQueue } from "./job_queue.ts";
 * import { SchedulerPool } from "./scheduler_pool.ts";
 * import type { BusJob } from "./bus_job.ts";
 * const status = dispatcherStatus({
 *   queue: new JobQueue<BusJob>(), scheds: new SchedulerPool<BusJob>(), outcomes: new Map(),
 *   recovering: {},
 * });
 * console.log(status.queue.length, status.schedulers); // 0 []
 * ```
 */
export function dispatcherStatus(parts: DispatcherParts): DispatcherStatus {
  const { queue, scheds } = parts;
  return {
    queue: {
      length: queue.length,
      byPriority: queue.countByPriority(),
      jobs: queue.first(STATUS_JOBS).map((job) => waitingStatus(job, scheds)),
    },
    schedulers: scheds.all().map((sched) => schedulerStatus(sched, scheds)),
    outcomes: Object.fromEntries(parts.outcomes),
    recovering: parts.recovering,
  };
}

function schedulerStatus(
  sched: PooledScheduler<BusJob>,
  scheds: SchedulerPool<BusJob>,
): SchedulerStatus {
  const { peer, jobs } = sched;
  const v2 = peer.protocol === 2;
  return {
    client: peer.client,
    name: peer.name,
    protocol: peer.protocol,
    slots: v2 ? peer.slots : undefined,
    free: v2 ? scheds.free(sched) : undefined,
    draining: sched.draining,
    running: [...jobs].map((job) => ({
      id: job.id,
      priority: job.priority,
      state: job.state,
      since: job.startedAt,
    })),
    ...(peer.labels && Object.keys(peer.labels).length > 0 ? { labels: { ...peer.labels } } : {}),
    ...(peer.commands && peer.commands.length > 0 ? { commands: [...peer.commands] } : {}),
  };
}

function waitingStatus(job: BusJob, scheds: SchedulerPool<BusJob>): WaitingJobStatus {
  const entry: WaitingJobStatus = { id: job.id, priority: job.priority, waiting: null };
  if (typeof job.payload.name === "string") entry.name = job.payload.name;
  entry.waiting = scheds.waitingReason(job.placement) ?? null;
  return entry;
}
