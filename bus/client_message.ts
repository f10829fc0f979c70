/**
 * The bus's side of the protocol's validation: {@linkcode parseClientMessage} checks what
 * clients send, as `parseServerMessage` (in `server_message.ts`) checks what the bus sends.
 *
 * @module
 */

import {
  BUS_JOB_STATES,
  type BusJobState,
  type ClientCommand,
  type ClientMessage,
  describeValue,
  isJobId,
  isJsonObject,
  type JobRequestMessage,
  type ListMessage,
  type OutputMessage,
  type ParseResult,
  previewText,
  type RegisterMessage,
  type Role,
  SCHEDULER_JOB_STATES,
  type SchedulerEventMessage,
  type SchedulerJobState,
  validatePayload,
  validatePriority,
} from "./protocol.ts";
import { MAX_LIST_LIMIT } from "./job_store.ts";

import { validateAllowList, validateLabels } from "../scheduler/command_spec.ts";

type Check<T> = { ok: true; value: T } | { ok: false; reason: string };

const ROLES: readonly Role[] = ["producer", "scheduler", "monitor"];
const COMMANDS: readonly ClientCommand[] = [
  "register",
  "drain",
  "job_request",
  "cancel",
  "set_priority",
  "event",
  "output",
  "list",
  "show",
];

/**
 * Parses and validates one text frame from a client.
 *
 * Pure: it checks the message's own shape only, not whether the sender may send it.
 *
 * @param text The frame's text.
 * @returns `{ ok: true, message }` or `{ ok: false, reason, op?, id? }`.
 * @example
 * ```ts
 * import { parseClientMessage } from "./client_message.ts";
 * const good = parseClientMessage('{"cmd":"job_request","payload":{"priority":3,"runtime":5}}');
 * console.log(good.ok); // true
 * const bad = parseClientMessage('{"cmd":"job_request","payload":{"priority":99,"runtime":5}}');
 * console.log(bad.ok ? "" : bad.reason); // priority must be an integer 0..10, got 99
 * ```
 */
export function parseClientMessage(text: string): ParseResult<ClientMessage> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: `not JSON: ${previewText(text)}` };
  }
  if (!isJsonObject(value)) {
    return { ok: false, reason: `a message must be a JSON object, got ${describeValue(value)}` };
  }
  const cmd = value.cmd;
  if (cmd === undefined) return { ok: false, reason: "missing 'cmd'" };
  if (typeof cmd !== "string" || !(COMMANDS as readonly string[]).includes(cmd)) {
    return { ok: false, reason: `unknown cmd ${describeValue(cmd)}` };
  }
  switch (cmd as ClientCommand) {
    case "register":
      return parseRegister(value);
    case "job_request":
      return parseJobRequest(value);
    case "cancel":
      return withId(value, "cancel", (id) => ({ ok: true, value: { cmd: "cancel", id } }));
    case "set_priority":
      return withId(value, "set_priority", (id) => {
        const priority = validatePriority(value.priority);
        return priority.ok
          ? { ok: true, value: { cmd: "set_priority", id, priority: priority.message } }
          : priority;
      });
    case "event":
      return withId(value, "event", (id) => parseEvent(value, id));
    case "drain":
      return parseDrain(value);
    case "output":
      return withId(value, "output", (id) => parseOutput(value, id));
    case "list":
      return parseList(value);
    case "show":
      return withId(value, "show", (id) => ({ ok: true, value: { cmd: "show", id } }));
  }
}

function parseDrain(value: Record<string, unknown>): ParseResult<ClientMessage> {
  const scheduler = value.scheduler;
  if (scheduler === undefined) return { ok: true, message: { cmd: "drain" } };
  if (!isJobId(scheduler)) {
    return {
      ok: false,
      op: "drain",
      reason: `drain: 'scheduler' must be a name of 1..128 characters, got ${
        describeValue(scheduler)
      }`,
    };
  }
  return { ok: true, message: { cmd: "drain", scheduler } };
}

function parseRegister(value: Record<string, unknown>): ParseResult<RegisterMessage> {
  const fail = (reason: string): ParseResult<RegisterMessage> => ({
    ok: false,
    reason,
    op: "register",
  });
  const type = value.type;
  if (type === undefined) return fail("register: missing 'type'");
  if (typeof type !== "string" || !(ROLES as readonly string[]).includes(type)) {
    return fail(`register: unknown role ${describeValue(type)} (producer, scheduler or monitor)`);
  }
  const protocol = value.protocol ?? 1;
  if (protocol !== 1 && protocol !== 2) {
    return fail(`register: unsupported protocol ${describeValue(protocol)} (1 or 2)`);
  }
  const message: RegisterMessage = { cmd: "register", type: type as Role, protocol };
  if (protocol === 1) {
    if (type === "monitor") return fail("register: a monitor needs protocol 2");
    return { ok: true, message };
  }
  if (value.name !== undefined) {
    if (!isJobId(value.name)) {
      return fail(
        `register: name must be a string of 1..128 characters, got ${describeValue(value.name)}`,
      );
    }
    message.name = value.name;
  }
  if (value.after !== undefined) {
    if (type === "scheduler" || !Number.isSafeInteger(value.after) || (value.after as number) < 0) {
      return fail(
        `register: 'after' must be an event seq (an integer >= 0) of a producer or monitor, got ${
          describeValue(value.after)
        }`,
      );
    }
    message.after = value.after as number;
  }
  if (type === "scheduler") {
    const slots = value.slots;
    if (!Number.isInteger(slots) || (slots as number) < 1) {
      return fail(
        `register: a v2 scheduler needs 'slots', an integer >= 1, got ${describeValue(slots)}`,
      );
    }
    message.slots = slots as number;
    if (value.running !== undefined) {
      if (!Array.isArray(value.running) || !value.running.every(isJobId)) {
        return fail("register: 'running' must be an array of job ids");
      }
      message.running = [...new Set(value.running as string[])];
    }
    if (value.labels !== undefined) {
      const labels = validateLabels("labels", value.labels);
      if (!labels.ok) return fail(`register: ${labels.reason}`);
      message.labels = labels.value;
    }
    if (value.commands !== undefined) {
      const commands = validateAllowList(value.commands);
      if (!commands.ok) return fail(`register: ${commands.reason}`);
      message.commands = commands.value;
    }
  }
  return { ok: true, message };
}

function parseJobRequest(value: Record<string, unknown>): ParseResult<JobRequestMessage> {
  const op = "job_request";
  let id: string | undefined;
  if (value.id !== undefined) {
    if (!isJobId(value.id)) return { ok: false, op, reason: badId(value.id) };
    id = value.id;
  }
  const payload = validatePayload(value.payload);
  if (!payload.ok) return { ...payload, op, ...(id === undefined ? {} : { id }) };
  const message: JobRequestMessage = { cmd: "job_request", payload: payload.message };
  if (id !== undefined) message.id = id;
  return { ok: true, message };
}

function parseEvent(value: Record<string, unknown>, id: string): Check<SchedulerEventMessage> {
  const state = value.state;
  if (typeof state !== "string" || !(SCHEDULER_JOB_STATES as readonly string[]).includes(state)) {
    return { ok: false, reason: `unknown state ${describeValue(state)}` };
  }
  const message: SchedulerEventMessage = { cmd: "event", id, state: state as SchedulerJobState };
  if (value.at !== undefined) {
    if (typeof value.at !== "number" || !Number.isFinite(value.at)) {
      return {
        ok: false,
        reason: `'at' must be epoch milliseconds, got ${describeValue(value.at)}`,
      };
    }
    message.at = value.at;
  }
  if (value.result !== undefined) {
    if (!isJsonObject(value.result)) {
      return {
        ok: false,
        reason: `'result' must be an object, got ${describeValue(value.result)}`,
      };
    }
    message.result = value.result;
  }
  if (value.reason !== undefined) {
    if (typeof value.reason !== "string") {
      return { ok: false, reason: `'reason' must be a string, got ${describeValue(value.reason)}` };
    }
    message.reason = value.reason;
  }
  if (value.requeue !== undefined) {
    if (typeof value.requeue !== "boolean") {
      return {
        ok: false,
        reason: `'requeue' must be a boolean, got ${describeValue(value.requeue)}`,
      };
    }
    if (state === "evicted") message.requeue = value.requeue;
  }
  return { ok: true, value: message };
}

function parseOutput(value: Record<string, unknown>, id: string): Check<OutputMessage> {
  const { stream, data, dropped } = value;
  if (stream !== "stdout" && stream !== "stderr") {
    return {
      ok: false,
      reason: `'stream' must be "stdout" or "stderr", got ${describeValue(stream)}`,
    };
  }
  if (typeof data !== "string") {
    return { ok: false, reason: `'data' must be a string, got ${describeValue(data)}` };
  }
  const message: OutputMessage = { cmd: "output", id, stream, data };
  if (dropped !== undefined) {
    if (!Number.isSafeInteger(dropped) || (dropped as number) < 0) {
      return {
        ok: false,
        reason: `'dropped' must be a count of bytes (an integer >= 0), got ${
          describeValue(dropped)
        }`,
      };
    }
    message.dropped = dropped as number;
  }
  return { ok: true, value: message };
}

function parseList(value: Record<string, unknown>): ParseResult<ListMessage> {
  const fail = (reason: string): ParseResult<ListMessage> => ({
    ok: false,
    reason: `list: ${reason}`,
    op: "list",
  });
  const message: ListMessage = { cmd: "list" };
  const { states, name, owner, limit } = value;
  if (states !== undefined) {
    if (!Array.isArray(states) || states.length === 0) {
      return fail(`'states' must be a non-empty array of job states, got ${describeValue(states)}`);
    }
    for (const state of states) {
      if (!(BUS_JOB_STATES as readonly unknown[]).includes(state)) {
        return fail(`unknown state ${describeValue(state)} (${BUS_JOB_STATES.join(", ")})`);
      }
    }
    message.states = [...new Set(states as BusJobState[])];
  }
  if (name !== undefined) {
    if (!isJobId(name)) {
      return fail(`'name' must be a string of 1..128 characters, got ${describeValue(name)}`);
    }
    message.name = name;
  }
  if (owner !== undefined) {
    if (!isJobId(owner)) {
      return fail(`'owner' must be a string of 1..128 characters, got ${describeValue(owner)}`);
    }
    message.owner = owner;
  }
  if (limit !== undefined) {
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_LIST_LIMIT) {
      return fail(`'limit' must be an integer 1..${MAX_LIST_LIMIT}, got ${describeValue(limit)}`);
    }
    message.limit = limit as number;
  }
  return { ok: true, message };
}

function withId<T extends ClientMessage>(
  value: Record<string, unknown>,
  op: string,
  build: (id: string) => Check<T>,
): ParseResult<T> {
  if (!isJobId(value.id)) return { ok: false, op, reason: `${op}: ${badId(value.id)}` };
  const result = build(value.id);
  return result.ok
    ? { ok: true, message: result.value }
    : { ok: false, op, id: value.id, reason: `${op}: ${result.reason}` };
}

function badId(value: unknown): string {
  return value === undefined
    ? "missing 'id'"
    : `id must be a string of 1..128 characters, got ${describeValue(value)}`;
}
