/**
 * The clients' side of the protocol's validation: {@linkcode parseServerMessage} checks what the
 * bus sends, as `parseClientMessage` (in `client_message.ts`) checks what clients send.
 *
 * @module
 */

import {
  BUS_JOB_STATES,
  describeValue,
  isJobId,
  isJsonObject,
  isPriority,
  type ParseResult,
  previewText,
  type ServerMessage,
  validatePayload,
} from "./protocol.ts";

/** The commands the bus sends (a seed scheduler gets bare payloads instead). */
export type ServerCommand = ServerMessage["cmd"];

/** One field of a server message: how to check it, what it should be, whether it may be absent. */
interface Field {
  /** True when good; false, or the reason, when not. */
  check: (value: unknown) => boolean | string;
  want: string;
  optional?: true;
}

const isString = (value: unknown): boolean => typeof value === "string";
const STRING: Field = { check: isString, want: "a string" };
const OPTIONAL_STRING: Field = { ...STRING, optional: true };
const ID: Field = { check: isJobId, want: "a string of 1..128 characters" };
const TRUE: Field = { check: (value) => value === true, want: "true", optional: true };
const OBJECT: Field = { check: isJsonObject, want: "an object", optional: true };
const STATE: Field = {
  check: (value) => (BUS_JOB_STATES as readonly unknown[]).includes(value),
  want: "a job state",
};

const TIME: Field = { check: Number.isFinite, want: "epoch milliseconds" };
const OPTIONAL_TIME: Field = { ...TIME, optional: true };
const PRIORITY: Field = { check: isPriority, want: "an integer 0..10" };
const COUNT: Field = {
  check: (value) => Number.isSafeInteger(value) && (value as number) >= 0,
  want: "an integer >= 0",
};

/** A `jobs` answer's line (`JobSummary`); checked, kept whole. */
const SUMMARY: Readonly<Record<string, Field>> = {
  id: ID,
  name: OPTIONAL_STRING,
  priority: PRIORITY,
  state: STATE,
  owner: STRING,
  scheduler: OPTIONAL_STRING,
  submittedAt: TIME,
  startedAt: OPTIONAL_TIME,
  endedAt: OPTIONAL_TIME,
  attempts: COUNT,
  waiting: OPTIONAL_STRING,
};

/** A history entry of a `job_info` answer. */
const HISTORY_ENTRY: Readonly<Record<string, Field>> = {
  state: STATE,
  at: TIME,
  scheduler: OPTIONAL_STRING,
  reason: OPTIONAL_STRING,
};

/** A `job_info` answer's job (`JobDetails`). */
const DETAILS: Readonly<Record<string, Field>> = {
  ...SUMMARY,
  payload: { check: isJsonObject, want: "an object" },
  result: OBJECT,
  reason: OPTIONAL_STRING,
  history: { check: (value) => checkArray(value, HISTORY_ENTRY), want: "an array" },
};

/** Every server message's fields; fields not listed are dropped. */
const SPECS: { readonly [C in ServerCommand]: Readonly<Record<string, Field>> } = {
  registered: {
    type: {
      check: (value) => value === "producer" || value === "scheduler" || value === "monitor",
      want: "producer, scheduler or monitor",
    },
    protocol: { check: (value) => value === 2, want: "2" },
    client: STRING,
    name: STRING,
    warning: OPTIONAL_STRING,
    seq: { ...COUNT, optional: true },
    tokenRole: OPTIONAL_STRING,
  },
  accepted: {
    id: ID,
    duplicate: TRUE,
    state: { ...STATE, optional: true },
    final: TRUE,
    scheduler: OPTIONAL_STRING,
    result: OBJECT,
    reason: OPTIONAL_STRING,
    waiting: OPTIONAL_STRING,
  },
  rejected: { id: { ...ID, optional: true }, reason: STRING },
  ack: {
    op: {
      check: (value) => value === "cancel" || value === "set_priority" || value === "drain",
      want: "an op",
    },
    id: ID,
  },
  error: { reason: STRING, op: OPTIONAL_STRING, id: OPTIONAL_STRING },
  job: {
    id: ID,
    payload: {
      check: (value) => {
        const payload = validatePayload(value);
        return payload.ok || payload.reason;
      },
      want: "a job payload",
    },
    attempt: {
      check: (value) => Number.isInteger(value) && (value as number) >= 1,
      want: "an integer >= 1",
      optional: true,
    },
  },
  cancel: { id: ID, reason: STRING },
  event: {
    id: ID,
    state: STATE,
    at: { check: Number.isFinite, want: "epoch milliseconds" },
    priority: { check: isPriority, want: "an integer 0..10" },
    scheduler: OPTIONAL_STRING,
    result: OBJECT,
    reason: OPTIONAL_STRING,
    final: TRUE,
    seq: { ...COUNT, optional: true },
  },
  resync: { reason: STRING, seq: COUNT },
  reported: {
    ids: {
      check: (value) => Array.isArray(value) && value.every(isJobId),
      want: "an array of job ids",
    },
  },
  output: {
    id: ID,
    stream: {
      check: (value) => value === "stdout" || value === "stderr",
      want: "stdout or stderr",
    },
    data: STRING,
    dropped: { ...COUNT, optional: true },
  },
  jobs: {
    jobs: { check: (value) => checkArray(value, SUMMARY), want: "an array" },
    total: COUNT,
  },
  job_info: {
    job: {
      check: (value) => isJsonObject(value) ? checkFields(value, DETAILS) : false,
      want: "an object",
    },
  },
};

/**
 * Parses and validates one text frame from the bus: the typed counterpart, for clients, of
 * `parseClientMessage`. Fields the message type does not have are dropped.
 *
 * @param text The frame's text.
 * @returns `{ ok: true, message }` (a {@linkcode ServerMessage}, discriminated by `cmd`) or
 * `{ ok: false, reason }` (a seed bus's bare payload is not a server message either).
 * @example
 * ```ts
 * import { parseServerMessage } from "./server_message.ts";
 * const parsed = parseServerMessage('{"cmd":"accepted","id":"p-1"}');
 * if (parsed.ok && parsed.message.cmd === "accepted") console.log(parsed.message.id); // p-1
 * console.log(parseServerMessage('{"priority":3,"runtime":2}').ok); // false
 * ```
 */
export function parseServerMessage(text: string): ParseResult<ServerMessage> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: `not JSON: ${previewText(text)}` };
  }
  return validateServerMessage(value);
}

/**
 * Validates a message from the bus already parsed from JSON; see
 * {@linkcode parseServerMessage}.
 *
 * @param value The parsed frame.
 * @returns `{ ok: true, message }` or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validateServerMessage } from "./server_message.ts";
 * const parsed = validateServerMessage({ cmd: "ack", op: "cancel", id: "p-1" });
 * console.log(parsed.ok); // true
 * const bad = validateServerMessage({ cmd: "ack", op: "jump", id: "p-1" });
 * console.log(bad.ok ? "" : bad.reason); // ack: 'op' must be an op, got "jump"
 * ```
 */
export function validateServerMessage(value: unknown): ParseResult<ServerMessage> {
  if (!isJsonObject(value)) {
    return { ok: false, reason: `a message must be a JSON object, got ${describeValue(value)}` };
  }
  const cmd = value.cmd;
  if (cmd === undefined) return { ok: false, reason: "missing 'cmd'" };
  if (typeof cmd !== "string" || !Object.hasOwn(SPECS, cmd)) {
    return { ok: false, reason: `unknown cmd ${describeValue(cmd)}` };
  }
  const message: Record<string, unknown> = { cmd };
  const good = checkFields(value, SPECS[cmd as ServerCommand], message);
  if (good !== true) return { ok: false, reason: `${cmd}: ${good}` };
  return { ok: true, message: message as unknown as ServerMessage };
}

/** Checks an object's fields against a spec, copying the listed ones into `into` if given. */
function checkFields(
  value: Record<string, unknown>,
  fields: Readonly<Record<string, Field>>,
  into?: Record<string, unknown>,
): true | string {
  for (const [key, field] of Object.entries(fields)) {
    const fieldValue = value[key];
    if (fieldValue === undefined) {
      if (field.optional) continue;
      return `missing '${key}'`;
    }
    const good = field.check(fieldValue);
    if (good !== true) {
      if (good === false) return `'${key}' must be ${field.want}, got ${describeValue(fieldValue)}`;
      return good.startsWith("[") ? `${key}${good}` : good; // an array item's reason: jobs[3]: …
    }
    if (into) into[key] = fieldValue;
  }
  return true;
}

/** Checks that a value is an array of objects that each pass `fields`; says which one fails. */
function checkArray(value: unknown, fields: Readonly<Record<string, Field>>): boolean | string {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (!isJsonObject(item)) return `[${i}] must be an object, got ${describeValue(item)}`;
    const good = checkFields(item, fields);
    if (good !== true) return `[${i}]: ${good}`;
  }
  return true;
}
