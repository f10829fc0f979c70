/**
 * The command job: what a producer may ask a scheduler to run (an argv, no shell, with its
 * working directory, environment, limits and placement constraints), its validation — shared by
 * the bus, which answers a bad field with its own `rejected` reason, and the scheduler, which
 * checks again before it runs anything — and the matching of a job against a scheduler's labels
 * and allow-list. The wire format is in `docs/protocol.md` ("Command jobs").
 *
 * @module
 */

import { describeValue as describe } from "../core/describe_value.ts";
import { isPriority, MAX_PRIORITY, MIN_PRIORITY } from "./job.ts";

/** Most elements in a command's argv. */
export const MAX_COMMAND_ARGS = 4096;
/** Most variables in a job's `env`. */
export const MAX_ENV_ENTRIES = 256;
/** Most labels a job may require or a scheduler announce. */
export const MAX_LABELS = 64;
/** Most retries of a failed job. */
export const MAX_RETRIES = 100;
/** Longest grace period between SIGTERM and SIGKILL, in seconds. */
export const MAX_GRACE_S = 3600;
/** Longest job label (`name`), in characters. */
export const MAX_NAME_LENGTH = 128;
/** Longest label value, in characters. */
export const MAX_LABEL_VALUE_LENGTH = 128;

/** Environment variable names a job may set. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Label names: letters, digits, `_`, `.`, `-`; 1..64 characters. */
const LABEL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A command job's payload, validated: the fields of `docs/protocol.md`'s "Command jobs". Extra
 * fields travel along untouched (as with every payload).
 */
export interface CommandSpec {
  /** Integer 0..10, lower = more urgent. */
  priority: number;
  /** The argv: `command[0]` is the executable (looked up on the scheduler's `PATH`), no shell. */
  command: string[];
  /** A label shown everywhere (lists, logs, the dashboard). */
  name?: string;
  /** Absolute working directory (default: the scheduler's). */
  cwd?: string;
  /** Variables added to the job's environment. */
  env?: Record<string, string>;
  /** Running time allowed per attempt, seconds; the smaller of it and the scheduler's wins. */
  timeout?: number;
  /** Seconds between SIGTERM and SIGKILL when the job is stopped. */
  grace?: number;
  /** Labels a scheduler must announce, with these values, to run the job. */
  requires?: Record<string, string>;
  /** How many times a failed or timed-out job is run again (default 0). */
  retries?: number;
  /** Whether the job's output is streamed to its owner while it runs. */
  follow?: boolean;
  /** Extra fields, passed along untouched. */
  [key: string]: unknown;
}

/** The result of a validation: the value, or why it is bad. */
export type SpecCheck<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Whether a payload is a command job's (it has a `command` field, valid or not).
 *
 * @param payload A job payload.
 * @returns True when the payload names a command.
 * @example
 * ```ts
 * import { isCommandPayload } from "./command_spec.ts";
 * console.log(isCommandPayload({ priority: 1, command: ["true"] })); // true
 * console.log(isCommandPayload({ priority: 1, runtime: 2 })); // false
 * ```
 */
export function isCommandPayload(payload: Record<string, unknown>): boolean {
  return payload.command !== undefined;
}

/**
 * Validates a command job's payload, field by field; the first bad field gives the reason.
 *
 * @param payload The payload (an object; its `command` field present).
 * @returns `{ ok: true, value }` with the payload typed, or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validateCommandSpec } from "./command_spec.ts";
 * const good = validateCommandSpec({ priority: 2, command: ["sh", "-c", "echo hi"] });
 * console.log(good.ok); // true
 * const bad = validateCommandSpec({ priority: 2, command: ["sh"], cwd: "tmp" });
 * console.log(bad.ok ? "" : bad.reason); // cwd must be an absolute path, got "tmp"
 * ```
 */
export function validateCommandSpec(payload: Record<string, unknown>): SpecCheck<CommandSpec> {
  const checks: Array<() => string | undefined> = [
    () => checkPriority(payload.priority),
    () => checkCommand(payload.command),
    () => payload.runtime === undefined ? undefined : "a command job takes no 'runtime'",
    () => checkName(payload.name),
    () => checkCwd(payload.cwd),
    () => checkEnv(payload.env),
    () => checkSeconds("timeout", payload.timeout, false, Infinity),
    () => checkSeconds("grace", payload.grace, true, MAX_GRACE_S),
    () => checkLabels("requires", payload.requires),
    () => checkRetries(payload.retries),
    () =>
      payload.follow === undefined || typeof payload.follow === "boolean"
        ? undefined
        : `follow must be true or false, got ${describe(payload.follow)}`,
  ];
  for (const check of checks) {
    const reason = check();
    if (reason !== undefined) return { ok: false, reason };
  }
  return { ok: true, value: payload as CommandSpec };
}

/**
 * Validates a scheduler's labels (or a job's `requires`): an object of label name to string.
 *
 * @param what The field's name, for the reason (`"labels"`, `"requires"`).
 * @param value The candidate.
 * @returns `{ ok: true, value }` or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validateLabels } from "./command_spec.ts";
 * console.log(validateLabels("labels", { gpu: "a100" }).ok); // true
 * const bad = validateLabels("labels", { "gpu type": "a100" });
 * console.log(bad.ok ? "" : bad.reason);
 * // labels: name "gpu type" must be 1..64 letters, digits, '_', '.' or '-'
 * ```
 */
export function validateLabels(what: string, value: unknown): SpecCheck<Record<string, string>> {
  const reason = checkLabels(what, value);
  return reason === undefined
    ? { ok: true, value: (value ?? {}) as Record<string, string> }
    : { ok: false, reason };
}

/**
 * Validates a scheduler's allow-list of commands: an array of names, absolute paths or `"*"`.
 *
 * @param value The candidate.
 * @returns `{ ok: true, value }` or `{ ok: false, reason }`.
 * @example
 * ```ts
 * import { validateAllowList } from "./command_spec.ts";
 * console.log(validateAllowList(["ffmpeg", "/usr/bin/python3"]).ok); // true
 * const bad = validateAllowList(["bin/x"]);
 * console.log(bad.ok ? "" : bad.reason);
 * // commands[0] must be a name without '/', an absolute path or '*', got "bin/x"
 * ```
 */
export function validateAllowList(value: unknown): SpecCheck<string[]> {
  if (value === undefined) return { ok: true, value: [] };
  if (!Array.isArray(value) || value.length > MAX_COMMAND_ARGS) {
    return { ok: false, reason: `commands must be an array of strings, got ${describe(value)}` };
  }
  for (const [i, entry] of value.entries()) {
    const good = typeof entry === "string" && entry.length > 0 && !entry.includes("\0") &&
      (entry === "*" || entry.startsWith("/") || !entry.includes("/"));
    if (!good) {
      return {
        ok: false,
        reason: `commands[${i}] must be a name without '/', an absolute path or '*', got ${
          describe(entry)
        }`,
      };
    }
  }
  return { ok: true, value: value as string[] };
}

/**
 * Whether an allow-list lets a scheduler run a command: `"*"` allows every command; any other
 * entry is compared with `command[0]` exactly (`"python3"` allows `["python3", …]`, looked up on
 * the scheduler's `PATH`, but not `["/tmp/x/python3"]`; `"/usr/bin/python3"` allows only that
 * path).
 *
 * @param allowList The scheduler's `--allow-command` entries (empty: no command jobs).
 * @param executable The job's `command[0]`.
 * @returns True when the command may run there.
 * @example
 * ```ts
 * import { allowsCommand } from "./command_spec.ts";
 * console.log(allowsCommand(["ffmpeg"], "ffmpeg"), allowsCommand(["ffmpeg"], "/x/ffmpeg")); // true false
 * console.log(allowsCommand(["*"], "anything"), allowsCommand([], "true")); // true false
 * ```
 */
export function allowsCommand(allowList: readonly string[], executable: string): boolean {
  return allowList.includes("*") || allowList.includes(executable);
}

/**
 * Whether a scheduler's labels satisfy a job's `requires`: every required label present with
 * the same value.
 *
 * @param labels The scheduler's labels.
 * @param requires The job's required labels (none: any scheduler).
 * @returns True when the job may run there.
 * @example
 * ```ts
 * import { labelsMatch } from "./command_spec.ts";
 * console.log(labelsMatch({ gpu: "a100", os: "linux" }, { gpu: "a100" })); // true
 * console.log(labelsMatch({ os: "linux" }, { gpu: "a100" })); // false
 * ```
 */
export function labelsMatch(
  labels: Readonly<Record<string, string>>,
  requires: Readonly<Record<string, string>> | undefined,
): boolean {
  if (requires === undefined) return true;
  for (const key in requires) {
    if (labels[key] !== requires[key]) return false;
  }
  return true;
}

/**
 * Says what a job requires in words, for "why it waits": `gpu=a100, os=linux`.
 *
 * @param requires The job's required labels.
 * @returns `key=value` pairs joined by `, `.
 * @example
 * ```ts
 * import { formatLabels } from "./command_spec.ts";
 * console.log(formatLabels({ gpu: "a100" })); // gpu=a100
 * ```
 */
export function formatLabels(requires: Readonly<Record<string, string>>): string {
  return Object.entries(requires).map(([key, value]) => `${key}=${value}`).join(", ");
}

function checkPriority(value: unknown): string | undefined {
  if (value === undefined) return "missing 'priority'";
  return isPriority(value)
    ? undefined
    : `priority must be an integer ${MIN_PRIORITY}..${MAX_PRIORITY}, got ${describe(value)}`;
}

function checkCommand(value: unknown): string | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    return `command must be a non-empty array of strings, got ${describe(value)}`;
  }
  if (value.length > MAX_COMMAND_ARGS) {
    return `command must have at most ${MAX_COMMAND_ARGS} elements, got ${value.length}`;
  }
  for (const [i, arg] of value.entries()) {
    if (typeof arg !== "string") return `command[${i}] must be a string, got ${describe(arg)}`;
    if (arg.includes("\0")) return `command[${i}] must not contain a NUL character`;
  }
  return value[0] === "" ? "command[0] must not be empty" : undefined;
}

function checkName(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const good = typeof value === "string" && value.length >= 1 &&
    value.length <= MAX_NAME_LENGTH && !CONTROL.test(value);
  return good
    ? undefined
    : `name must be 1..${MAX_NAME_LENGTH} printable characters, got ${describe(value)}`;
}

function checkCwd(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const good = typeof value === "string" && value.startsWith("/") && !value.includes("\0");
  return good ? undefined : `cwd must be an absolute path, got ${describe(value)}`;
}

function checkEnv(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return `env must be an object of strings, got ${describe(value)}`;
  const names = Object.keys(value);
  if (names.length > MAX_ENV_ENTRIES) {
    return `env must have at most ${MAX_ENV_ENTRIES} variables, got ${names.length}`;
  }
  for (const name of names) {
    if (!ENV_NAME.test(name)) {
      return `env: name ${
        describe(name)
      } must be letters, digits and '_', not starting with a digit`;
    }
    const text = value[name];
    if (typeof text !== "string") return `env.${name} must be a string, got ${describe(text)}`;
    if (text.includes("\0")) return `env.${name} must not contain a NUL character`;
  }
  return undefined;
}

function checkSeconds(
  what: string,
  value: unknown,
  zeroOk: boolean,
  max: number,
): string | undefined {
  if (value === undefined) return undefined;
  const good = typeof value === "number" && Number.isFinite(value) &&
    (zeroOk ? value >= 0 : value > 0) && value <= max;
  if (good) return undefined;
  const range = zeroOk ? ">= 0" : "> 0";
  const most = Number.isFinite(max) ? ` and <= ${max}` : "";
  return `${what} must be a number of seconds ${range}${most}, got ${describe(value)}`;
}

function checkLabels(what: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return `${what} must be an object of strings, got ${describe(value)}`;
  const names = Object.keys(value);
  if (names.length > MAX_LABELS) {
    return `${what} must have at most ${MAX_LABELS} labels, got ${names.length}`;
  }
  for (const name of names) {
    if (!LABEL_NAME.test(name)) {
      return `${what}: name ${describe(name)} must be 1..64 letters, digits, '_', '.' or '-'`;
    }
    const text = value[name];
    const good = typeof text === "string" && text.length <= MAX_LABEL_VALUE_LENGTH &&
      !CONTROL.test(text);
    if (!good) {
      return `${what}.${name} must be a string of at most ${MAX_LABEL_VALUE_LENGTH} printable ` +
        `characters, got ${describe(text)}`;
    }
  }
  return undefined;
}

function checkRetries(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const good = Number.isInteger(value) && (value as number) >= 0 &&
    (value as number) <= MAX_RETRIES;
  return good ? undefined : `retries must be an integer 0..${MAX_RETRIES}, got ${describe(value)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
