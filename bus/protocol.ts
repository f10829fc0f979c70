/**
 * The bus wire protocol: message types and their validation, as pure functions. The prose
 * specification is `docs/protocol.md`.
 *
 * @module
 */

import { describeValue } from "../core/describe_value.ts";
import { isFinalState, isPriority, JOB_STATES, type JobState } from "../scheduler/job.ts";
import {
  type CommandSpec,
  isCommandPayload,
  validateCommandSpec,
  validateLabels,
} from "../scheduler/command_spec.ts";
import type { JobResult } from "../scheduler/job_result.ts";
import type { SleeperPayload } from "../scheduler/sleeper_launcher.ts";

export { isPriority, MAX_PRIORITY, MIN_PRIORITY } from "../scheduler/job.ts";
export { describeValue, previewText } from "../core/describe_value.ts";

/** The newest protocol version the bus speaks: what our clients put in their `register`. */
export const PROTOCOL_VERSION = 2;
/** Longest job id, in characters. */
export const MAX_ID_LENGTH = 128;

/** A client's role on the bus. */
export type Role = "producer" | "scheduler" | "monitor";

/**
 * Job states a v2 scheduler reports: a runner's states ({@linkcode JobState}) except
 * `requeued`, which only the bus decides (a scheduler reports `evicted`; the bus requeues).
 */
export type SchedulerJobState = Exclude<JobState, "requeued">;

/**
 * Job states in events the bus sends: a runner's states ({@linkcode JobState}: the schedulers'
 * reports, and the bus's own `queued`, `requeued`, `cancelled`) plus the one state only the bus
 * has, `delivered` (handed to a seed scheduler, or broadcast: final, nothing more is known).
 * Which of them end a job: {@linkcode isFinalBusState}.
 */
export type BusJobState = JobState | "delivered";

/**
 * Every state of a bus event: {@linkcode JOB_STATES} plus `delivered`.
 *
 * @example
 * ```ts
 * import { BUS_JOB_STATES } from "./protocol.ts";
 * console.log(BUS_JOB_STATES.includes("delivered")); // true
 * ```
 */
export const BUS_JOB_STATES: readonly BusJobState[] = [...JOB_STATES, "delivered"];

/** Every state a v2 scheduler may report, in lifecycle order. */
export const SCHEDULER_JOB_STATES: readonly SchedulerJobState[] = [
  "queued",
  "started",
  "suspended",
  "resumed",
  "evicted",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
];

/**
 * The seed's test job on the wire: sleep `runtime` seconds. Extra fields travel along to the
 * scheduler.
 */
export interface SleeperJobPayload extends SleeperPayload {
  /** Integer 0..10, lower = more urgent. */
  priority: number;
  /** Run time in seconds (the seed's unit): a positive finite number. */
  runtime: number;
  /** Extra fields, passed to the scheduler untouched. */
  [key: string]: unknown;
}

/**
 * A job's payload: the seed's sleeper job ({@linkcode SleeperJobPayload}, with `runtime`) or a
 * command job ({@linkcode CommandSpec}, with `command`; `docs/protocol.md`, "Command jobs").
 */
export type JobPayload = SleeperJobPayload | CommandSpec;

/** `register`: the first message of every client. */
export interface RegisterMessage {
  /** Command. */
  cmd: "register";
  /** The role. */
  type: Role;
  /** Protocol version: 1 (seed) unless the client says 2. */
  protocol: 1 | 2;
  /** A name (protocol 2): a producer's owner identity, a scheduler's display name. */
  name?: string;
  /** A v2 scheduler's slot count (required for it). */
  slots?: number;
  /** Ids of jobs a reconnecting v2 scheduler still runs. */
  running?: string[];
  /** A v2 scheduler's labels (`--label gpu=a100`): jobs' `requires` are matched against them. */
  labels?: Record<string, string>;
  /**
   * A v2 scheduler's allow-list of commands (`--allow-command`): names, absolute paths or
   * `"*"`. Absent or empty: it runs no command jobs.
   */
  commands?: string[];
  /**
   * A v2 producer's or monitor's resume point: the `seq` of the last job event it received.
   * The bus first sends every event it has after that one (from its store), then live ones;
   * when it no longer has them all it sends `resync`. Absent: live events only.
   */
  after?: number;
}

/** `job_request`: a producer submits a job. */
export interface JobRequestMessage {
  /** Command. */
  cmd: "job_request";
  /** The producer's id for the job (protocol 2); the bus assigns one when absent. */
  id?: string;
  /** The job. */
  payload: JobPayload;
}

/** `cancel` from a v2 producer. */
export interface CancelMessage {
  /** Command. */
  cmd: "cancel";
  /** The job. */
  id: string;
}

/** `set_priority` from a v2 producer. */
export interface SetPriorityMessage {
  /** Command. */
  cmd: "set_priority";
  /** The job. */
  id: string;
  /** The new priority. */
  priority: number;
}

/** `event` from a v2 scheduler: a lifecycle change of a job it was given. */
export interface SchedulerEventMessage {
  /** Command. */
  cmd: "event";
  /** The job. */
  id: string;
  /** The new state. */
  state: SchedulerJobState;
  /** When it happened, epoch ms. */
  at?: number;
  /** Outcome details (exit code, durationMs, ...). */
  result?: Record<string, unknown>;
  /** Why (eviction, failure, ...). */
  reason?: string;
  /** With `evicted`: `false` ends the job as evicted instead of requeueing it. */
  requeue?: boolean;
}

/**
 * `drain` from a v2 scheduler that is shutting down: send it no more jobs (neither into free
 * slots nor to preempt); it ends or hands back what it has, then disconnects. From an admin
 * token's connection, with `scheduler`: drain that scheduler (every connection with its name).
 */
export interface DrainMessage {
  /** Command. */
  cmd: "drain";
  /** The scheduler to drain, by name (an admin's; a scheduler may name only itself). */
  scheduler?: string;
}

/**
 * `output` from a v2 scheduler: a piece of a running job's output, for a job submitted with
 * `follow: true`; relayed by the bus to the job's owner only (as the same message).
 */
export interface OutputMessage {
  /** Command. */
  cmd: "output";
  /** The job. */
  id: string;
  /** Which stream. */
  stream: "stdout" | "stderr";
  /** The text (UTF-8; invalid bytes replaced). */
  data: string;
  /** Bytes the scheduler dropped before this piece (rate limit), if any. */
  dropped?: number;
}

/** `list`: a v2 client asks for jobs (waiting first, in dispatch order; then running; then finished, newest first). */
export interface ListMessage {
  /** Command. */
  cmd: "list";
  /** Only jobs in these states (any of them). */
  states?: BusJobState[];
  /** Only jobs whose name or id contains this text. */
  name?: string;
  /** Only jobs of this owner. */
  owner?: string;
  /** At most this many (default 100, at most 10,000). */
  limit?: number;
}

/** `show`: a v2 client asks for one job's details. */
export interface ShowMessage {
  /** Command. */
  cmd: "show";
  /** The job. */
  id: string;
}

/** Any message a client may send to the bus. */
export type ClientMessage =
  | RegisterMessage
  | JobRequestMessage
  | CancelMessage
  | SetPriorityMessage
  | SchedulerEventMessage
  | DrainMessage
  | OutputMessage
  | ListMessage
  | ShowMessage;

/** The commands a client may send. */
export type ClientCommand = ClientMessage["cmd"];

/** `registered`: the answer to a v2 `register`. */
export interface RegisteredMessage {
  /** Command. */
  cmd: "registered";
  /** The role registered. */
  type: Role;
  /** Always 2. */
  protocol: 2;
  /** The connection id. */
  client: string;
  /** The name in use (the connection id when none was given). */
  name: string;
  /**
   * Something the client should know about its registration: for a scheduler whose name a
   * live scheduler connection already uses, `"scheduler name \"node-a\" is already used by
   * connection c3"` (a second scheduler with the same name, or this one's stale connection).
   */
  warning?: string;
  /**
   * The `seq` of the bus's latest job event when the client registered: a producer or monitor
   * that registers again after a reconnect sends it (or a later event's) as `after`. Its
   * presence also says that the bus acknowledges a scheduler's final reports (`reported`).
   */
  seq?: number;
  /**
   * With `--auth`: the role of the client's token (`admin`, `producer`, `scheduler`,
   * `monitor`), so that a client can tell what it may do (the dashboard offers actions to an
   * admin only).
   */
  tokenRole?: string;
}

/** `accepted`: a job was taken (or was already known: `duplicate`). */
export interface AcceptedMessage {
  /** Command. */
  cmd: "accepted";
  /** The job id (assigned by the bus when the request had none). */
  id: string;
  /** Present and true when the id was seen before. */
  duplicate?: true;
  /**
   * With `duplicate`: the job's current state (`queued` also while a scheduler has it but has
   * not reported yet), or its final state.
   */
  state?: BusJobState;
  /** With `duplicate`: present and true when `state` is the job's final state. */
  final?: true;
  /** With `duplicate`: the scheduler that has the job, or that reported its final state. */
  scheduler?: string;
  /** With a final `state`: the result object its scheduler reported, if any. */
  result?: Record<string, unknown>;
  /** With a final `state`: the reason given, if any. */
  reason?: string;
  /**
   * Why the new job waits in the bus with nothing to run it: `"no scheduler connected"` when no
   * scheduler was connected as it was accepted.
   */
  waiting?: string;
}

/** `rejected`: a v2 job request was refused. */
export interface RejectedMessage {
  /** Command. */
  cmd: "rejected";
  /** The request's id, when it had a valid one. */
  id?: string;
  /** Why. */
  reason: string;
}

/** `ack`: a cancel, set_priority or an admin's drain succeeded. */
export interface AckMessage {
  /** Command. */
  cmd: "ack";
  /** Which request. */
  op: "cancel" | "set_priority" | "drain";
  /** The job; for `drain`, the scheduler's name. */
  id: string;
}

/** `error`: bad input or a refused operation. */
export interface ErrorMessage {
  /** Command. */
  cmd: "error";
  /** What was wrong. */
  reason: string;
  /** The command it answers, when known. */
  op?: string;
  /** The job, when known. */
  id?: string;
}

/** `job`: the bus gives a v2 scheduler a job. */
export interface JobMessage {
  /** Command. */
  cmd: "job";
  /** The job id (used in the scheduler's events). */
  id: string;
  /** The payload (its `priority` is the current one). */
  payload: JobPayload;
  /** Which run of the job this is: 1 the first time, 2 after a retry or a requeue, ... */
  attempt?: number;
}

/** `cancel`: the bus tells a v2 scheduler to stop a job. */
export interface CancelJobMessage {
  /** Command. */
  cmd: "cancel";
  /** The job. */
  id: string;
  /** `"cancelled by its owner"`, `"reassigned"` or `"unknown job"`. */
  reason: string;
}

/** `event`: a job's lifecycle change, to its v2 producer and to monitors. */
export interface JobEventMessage {
  /** Command. */
  cmd: "event";
  /** The job. */
  id: string;
  /** The new state. */
  state: BusJobState;
  /** When, epoch ms. */
  at: number;
  /** The job's priority. */
  priority: number;
  /** The scheduler's name, for states reported by or given to a scheduler. */
  scheduler?: string;
  /** Outcome details, as the scheduler reported them. */
  result?: Record<string, unknown>;
  /** Why, when known. */
  reason?: string;
  /** Present and true on the job's last event: its state is final (even `evicted`). */
  final?: true;
  /**
   * The event's sequence number in the bus's store: increasing, one series for the whole bus
   * (an owner sees a subsequence). A client keeps the last one to resume from (`after`).
   */
  seq?: number;
}

/**
 * `resync`: the bus cannot send every event a producer or monitor missed (it no longer has
 * them all): the client should read the state of the jobs it follows again (`show`, or a
 * `job_request` re-sent under the same id).
 */
export interface ResyncMessage {
  /** Command. */
  cmd: "resync";
  /** Why, e.g. `"events before seq 1200 are no longer kept"`. */
  reason: string;
  /** The `seq` of the latest event now: resume from it. */
  seq: number;
}

/**
 * `reported`: to a v2 scheduler, the bus has stored the final reports of these jobs (they are
 * on disk): the scheduler may forget them. Until then it keeps them and reports them again
 * after a reconnect.
 */
export interface ReportedMessage {
  /** Command. */
  cmd: "reported";
  /** The jobs whose final report is stored. */
  ids: string[];
}

/** One job in a `jobs` answer (a line of `deno task jobs -- list`). */
export interface JobSummary {
  /** The job. */
  id: string;
  /** Its label, if it has one. */
  name?: string;
  /** Its current priority. */
  priority: number;
  /** Its current (or final) state. */
  state: BusJobState;
  /** Whose job it is. */
  owner: string;
  /** The scheduler that has it or ran it last. */
  scheduler?: string;
  /** When the bus accepted it, epoch ms. */
  submittedAt: number;
  /** When it last started, epoch ms. */
  startedAt?: number;
  /** When it ended, epoch ms. */
  endedAt?: number;
  /** How many times it was started. */
  attempts: number;
  /** Why it waits with nothing to run it ("no scheduler with gpu=a100"), while it waits. */
  waiting?: string;
}

/** One change in a job's history (`job_info`). */
export interface JobHistoryEntry {
  /** The state entered. */
  state: BusJobState;
  /** When, epoch ms. */
  at: number;
  /** The scheduler concerned, if any. */
  scheduler?: string;
  /** Why, when known. */
  reason?: string;
}

/** A job's details: its summary, payload, result and history (`deno task jobs -- show ID`). */
export interface JobDetails extends JobSummary {
  /** What was submitted. */
  payload: JobPayload;
  /** Its result, once it has one (the last attempt's). */
  result?: JobResult;
  /** Why it is in its state, when known. */
  reason?: string;
  /** Its state changes, oldest first (at most 100; the first ones dropped beyond). */
  history: JobHistoryEntry[];
}

/** `jobs`: the answer to `list`. */
export interface JobsMessage {
  /** Command. */
  cmd: "jobs";
  /** The jobs. */
  jobs: JobSummary[];
  /** How many jobs matched in all (more than `jobs.length` when the limit cut the list). */
  total: number;
}

/**
 * A `list`'s answer without its `cmd`: the jobs (waiting first in dispatch order, then running,
 * then finished newest first; at most the limit) and how many matched in all.
 */
export type JobList = Omit<JobsMessage, "cmd">;

/** `job_info`: the answer to `show`. */
export interface JobInfoMessage {
  /** Command. */
  cmd: "job_info";
  /** The job. */
  job: JobDetails;
}

/** Any message the bus sends (a seed scheduler gets bare payloads instead). */
export type ServerMessage =
  | RegisteredMessage
  | AcceptedMessage
  | RejectedMessage
  | AckMessage
  | ErrorMessage
  | JobMessage
  | CancelJobMessage
  | JobEventMessage
  | OutputMessage
  | JobsMessage
  | JobInfoMessage
  | ResyncMessage
  | ReportedMessage;

/** The result of validating input: the value, or why it is bad (plus `op`/`id` when known). */
export type ParseResult<T> =
  | { ok: true; message: T }
  | { ok: false; reason: string; op?: string; id?: string };

/**
 * Validates a job payload. With a `command` field it is a command job, checked field by field
 * by `validateCommandSpec` (a `runtime` beside it is refused); without, the seed's sleeper job:
 * an integer `priority` in 0..10, a positive finite `runtime` and, optionally, `requires`
 * (labels, as a command job's). Other fields are kept.
 *
 * @param value The candidate payload.
 * @returns `{ ok: true, message: payload }` or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validatePayload } from "./protocol.ts";
 * console.log(validatePayload({ priority: 1, runtime: 3, tag: "x" }).ok); // true
 * console.log(validatePayload({ priority: 1 }).ok); // false
 * const bad = validatePayload({ priority: 1, command: ["sh"], runtime: 3 });
 * console.log(bad.ok ? "" : bad.reason); // a command job takes no 'runtime'
 * ```
 */
export function validatePayload(value: unknown): ParseResult<JobPayload> {
  if (value === undefined) return { ok: false, reason: "missing 'payload'" };
  if (!isJsonObject(value)) {
    return { ok: false, reason: `payload must be an object, got ${describeValue(value)}` };
  }
  if (isCommandPayload(value)) {
    const spec = validateCommandSpec(value);
    return spec.ok ? { ok: true, message: spec.value } : spec;
  }
  const priority = validatePriority(value.priority);
  if (!priority.ok) return priority;
  if (value.requires !== undefined) {
    const requires = validateLabels("requires", value.requires);
    if (!requires.ok) return requires;
  }
  const runtime = value.runtime;
  if (typeof runtime !== "number" || !Number.isFinite(runtime) || runtime <= 0) {
    return {
      ok: false,
      reason: `runtime must be a positive finite number of seconds, got ${describeValue(runtime)}`,
    };
  }
  return { ok: true, message: value as JobPayload };
}

/**
 * Validates a priority: an integer from 0 (most urgent) to 10.
 *
 * @param value The candidate.
 * @returns `{ ok: true, message: priority }` or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validatePriority } from "./protocol.ts";
 * const bad = validatePriority(99);
 * console.log(bad.ok ? "" : bad.reason); // priority must be an integer 0..10, got 99
 * ```
 */
export function validatePriority(value: unknown): ParseResult<number> {
  if (value === undefined) return { ok: false, reason: "missing 'priority'" };
  return isPriority(value)
    ? { ok: true, message: value }
    : { ok: false, reason: `priority must be an integer 0..10, got ${describeValue(value)}` };
}

/**
 * Whether a value is a valid job id: a string of 1..128 characters.
 *
 * @param value The candidate.
 * @returns True for a usable id.
 * @example
 * ```ts
 * import { isJobId } from "./protocol.ts";
 * console.log(isJobId("j-1"), isJobId(""), isJobId(7)); // true false false
 * ```
 */
export function isJobId(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= MAX_ID_LENGTH;
}

/**
 * Whether a state in a bus `event` (or a duplicate `accepted`) ends the job's life at the bus:
 * the runner's final states ({@linkcode isFinalState}) and `delivered`; but `evicted` only when
 * the message is marked `"final": true` (its scheduler said `"requeue": false`), since the bus
 * otherwise requeues an evicted job.
 *
 * @param state A bus job state.
 * @param markedFinal The message's `final` flag.
 * @returns True for `succeeded`, `failed`, `timed_out`, `cancelled`, `delivered`, and
 * `evicted` marked final.
 * @example
 * ```ts
 * import { isFinalBusState } from "./protocol.ts";
 * console.log(isFinalBusState("failed"), isFinalBusState("started")); // true false
 * console.log(isFinalBusState("evicted"), isFinalBusState("evicted", true)); // false true
 * ```
 */
export function isFinalBusState(state: BusJobState, markedFinal = false): boolean {
  if (state === "delivered") return true;
  if (state === "evicted") return markedFinal;
  return isFinalState(state);
}

/**
 * Serialises a bus message as a text frame.
 *
 * @param message The message.
 * @returns JSON text.
 * @example
 * ```ts
 * import { encodeMessage } from "./protocol.ts";
 * console.log(encodeMessage({ cmd: "accepted", id: "j-1" })); // {"cmd":"accepted","id":"j-1"}
 * ```
 */
export function encodeMessage(message: ServerMessage | ClientMessage): string {
  return JSON.stringify(message);
}

/**
 * Whether a value is a JSON object: not `null`, not an array.
 *
 * @param value The candidate.
 * @returns True for a plain object.
 * @example
 * ```ts
 * import { isJsonObject } from "./protocol.ts";
 * console.log(isJsonObject({}), isJsonObject([]), isJsonObject(null)); // true false false
 * ```
 */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
