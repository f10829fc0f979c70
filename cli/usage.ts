/**
 * The one shape of every CLI's usage text: the command line, what it does, the flags in
 * aligned columns, then examples.
 *
 * @module
 */

/** One section of a usage text: rows of `[flag, meaning]`, or plain lines. */
export interface UsageSection {
  /** The heading, without its colon: `"Options"`, `"Exit codes"`. */
  title: string;
  /** `[flag, meaning]` rows, aligned; a meaning may span lines (`\n`). */
  rows?: ReadonlyArray<readonly [string, string]>;
  /** Plain lines, indented by two spaces. */
  lines?: readonly string[];
}

/** What {@linkcode formatUsage} lays out. */
export interface UsageSpec {
  /** How to run it: `"deno task bus"`. */
  command: string;
  /**
   * What follows the command.
   * @default {"[-- options]"}
   */
  args?: string;
  /** What it does: one short paragraph (lines already wrapped). */
  about: string;
  /** Options, then anything else (exit codes, showcases). */
  sections: readonly UsageSection[];
  /** Complete command lines. */
  examples: readonly string[];
}

/**
 * Lays out a usage text in the shape every CLI here shares:
 *
 * ```text
 * Usage: deno task bus [-- options]
 *
 * What it does.
 *
 * Options:
 *   --port PORT   port (default 8101)
 *
 * Examples:
 *   deno task bus
 * ```
 *
 * @param spec See {@linkcode UsageSpec}.
 * @returns The usage text, without a final newline.
 *
 * @example
 * ```ts
 * import { formatUsage } from "./usage.ts";
 * const usage = formatUsage({
 *   command: "deno task hello",
 *   about: "Says hello.",
 *   sections: [{ title: "Options", rows: [["-h, --help", "show this help"]] }],
 *   examples: ["deno task hello"],
 * });
 * console.log(usage.split("\n")[0]); // "Usage: deno task hello [-- options]"
 * ```
 */
export function formatUsage(spec: UsageSpec): string {
  // Flag columns line up across sections; other tables (exit codes) have their own width.
  const widest = (rows: ReadonlyArray<readonly [string, string]>): number =>
    Math.max(0, ...rows.map(([first]) => first.length));
  const isFlags = (s: UsageSection): boolean => (s.rows ?? []).every(([f]) => f.startsWith("-"));
  const flagWidth = widest(spec.sections.filter(isFlags).flatMap((s) => s.rows ?? []));
  const blocks = [`Usage: ${spec.command} ${spec.args ?? "[-- options]"}`, spec.about];
  for (const section of spec.sections) {
    const width = isFlags(section) ? flagWidth : widest(section.rows ?? []);
    const rows = (section.rows ?? []).map(([flag, meaning]) =>
      `  ${flag.padEnd(width)}  ${meaning.split("\n").join(`\n  ${" ".repeat(width)}  `)}`
    );
    const lines = (section.lines ?? []).map((line) => `  ${line}`);
    blocks.push([`${section.title}:`, ...rows, ...lines].join("\n"));
  }
  blocks.push(["Examples:", ...spec.examples.map((example) => `  ${example}`)].join("\n"));
  return blocks.join("\n\n");
}
