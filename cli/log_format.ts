/**
 * The two forms of a CLI's log lines (`--log-format text|json`): today's stamped human line, or
 * one JSON object per line with the time, the level, the message and the line's fields.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { stamp } from "./stamp.ts";

/** The forms of log lines `--log-format` chooses. */
export type LogFormat = "text" | "json";

/** Every {@linkcode LogFormat}. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** How much a log line matters. */
export type LogLevel = "info" | "warning";

/**
 * What a log line says beyond its words, for machines: job id, priority, scheduler, owner,
 * state… (`undefined` values are left out).
 */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** One log line before it is formatted. */
export interface LogRecord {
  /** When, epoch milliseconds. */
  time: number;
  /** Its level. */
  level: LogLevel;
  /** The human words (without stamp or `warning:`). */
  message: string;
  /**
   * Its fields.
   * @default {{}}
   */
  fields?: LogFields | undefined;
}

/** The keys a field may not take over in a JSON line. */
const RESERVED = new Set(["time", "level", "message"]);

/**
 * Formats one log line.
 *
 * @param format `"text"`: `HH:MM:SS.mmm message` (`HH:MM:SS.mmm warning: message` for a
 * warning); `"json"`: `{"time":"<ISO>","level":…,"message":…,…fields}` on one line.
 * @param record The line.
 * @returns The formatted line, without a newline.
 * @example
 * ```ts
 * import { formatLog } from "./log_format.ts";
 * const record = { time: 0, level: "info", message: "job j-1 requeued", fields: { job: "j-1" } } as const;
 * console.log(formatLog("json", record));
 * // {"time":"1970-01-01T00:00:00.000Z","level":"info","message":"job j-1 requeued","job":"j-1"}
 * ```
 */
export function formatLog(format: LogFormat, record: LogRecord): string {
  if (format === "text") {
    const warning = record.level === "warning" ? "warning: " : "";
    return `${stamp(record.time)} ${warning}${record.message}`;
  }
  const line: Record<string, unknown> = {
    time: new Date(record.time).toISOString(),
    level: record.level,
    message: record.message,
  };
  for (const [key, value] of Object.entries(record.fields ?? {})) {
    if (value === undefined) continue;
    line[RESERVED.has(key) ? `field_${key}` : key] = value;
  }
  return JSON.stringify(line);
}

/**
 * Reads `--log-format`'s value.
 *
 * @param value The flag's value (`undefined`: not given).
 * @returns The format (`"text"` when not given).
 * @throws {UsageError} For anything but `text` or `json`.
 * @example
 * ```ts
 * import { logFormatFlag } from "./log_format.ts";
 * console.log(logFormatFlag("json"), logFormatFlag(undefined)); // json text
 * ```
 */
export function logFormatFlag(value: string | undefined): LogFormat {
  if (value === undefined) return "text";
  if (!LOG_FORMATS.includes(value as LogFormat)) {
    throw new UsageError(`--log-format must be text or json, got '${value}'`);
  }
  return value as LogFormat;
}
