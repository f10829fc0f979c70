/**
 * Short descriptions of bad values, for error reasons that say what was seen.
 *
 * @module
 */

/**
 * A short description of a bad value for an error reason: strings quoted and cut at 40
 * characters, objects and arrays named, other values as they print.
 *
 * @param value The value.
 * @returns The description.
 * @example
 * ```ts
 * import { describeValue } from "./describe_value.ts";
 * console.log(describeValue("x"), describeValue([1]), describeValue(7)); // "x" an array 7
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return JSON.stringify(previewText(value));
  return String(value);
}

/**
 * The start of a text for an error reason: at most 40 characters, then `…`.
 *
 * @param text The text.
 * @returns The text, cut.
 * @example
 * ```ts
 * import { previewText } from "./describe_value.ts";
 * console.log(previewText("x".repeat(50)).length); // 41
 * ```
 */
export function previewText(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
