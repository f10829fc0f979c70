/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it throws
 * `PromParseError` on anything a scraper could reject or misread.
 *
 * @module
 */

/** The output broke the format (line number and why). */
export class PromParseError extends Error {
  override name = "PromParseError";
}

/** One sample line. */
export interface PromSample {
  /** Its name (`x_bucket`, `x_sum`… for a histogram). */
  name: string;
  /** Its labels. */
  labels: Record<string, string>;
  /** Its value. */
  value: number;
}

/** One metric family: its HELP, TYPE and samples. */
export interface PromFamily {
  /** The family name. */
  name: string;
  /** The HELP text, unescaped. */
  help: string | undefined;
  /** The TYPE. */
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  /** Its samples in order. */
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/**
 * Parses the whole text.
 *
 * @param text What `/metrics` answered.
 * @returns The families by name, in order.
 * @throws {PromParseError} On any deviation from the format.
 * @example
 * ```ts
 * import { parseProm } from "./prom_parser.ts";
 * const families = parseProm("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n");
 * console.log(families.get("a_total")?.samples[0]?.value); // 1
 * ```
 */
export function parseProm(text: string): Map<string, PromFamily> {
  if (text !== "" && !text.endsWith("\n")) throw new PromParseError("text must end with \\n");
  const families = new Map<string, PromFamily>();
  let current: PromFamily | undefined;
  const closed = new Set<string>();
  const family = (name: string, n: number): PromFamily => {
    if (current?.name === name) return current;
    if (current) closed.add(current.name);
    if (closed.has(name) || families.has(name)) {
      throw new PromParseError(`line ${n}: family ${name} is not contiguous`);
    }
    current = { name, help: undefined, type: "untyped", samples: [] };
    families.set(name, current);
    return current;
  };
  const lines = text.split("\n").slice(0, -1);
  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === "") throw new PromParseError(`line ${n}: empty line`);
    if (line.startsWith("#")) return comment(line, n, family);
    const sample = parseSample(line, n);
    const owner = familyOf(sample.name, current);
    const f = family(owner, n);
    checkSampleName(f, sample.name, n);
    f.samples.push(sample);
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

function comment(line: string, n: number, family: (name: string, n: number) => PromFamily): void {
  const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
  if (!m) {
    if (/^# (HELP|TYPE)\b/.test(line)) throw new PromParseError(`line ${n}: bad ${line}`);
    return; // a plain comment
  }
  const [, kind, name, rest = ""] = m;
  if (!NAME.test(name!)) throw new PromParseError(`line ${n}: bad metric name ${name}`);
  const f = family(name!, n);
  if (kind === "HELP") {
    if (f.help !== undefined) throw new PromParseError(`line ${n}: second HELP for ${name}`);
    if (/\\[^\\n]|\\$/.test(rest.replaceAll("\\\\", ""))) {
      throw new PromParseError(`line ${n}: bad escape in HELP`);
    }
    f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => c === "n" ? "\n" : "\\");
    return;
  }
  if (f.samples.length > 0) throw new PromParseError(`line ${n}: TYPE after samples of ${name}`);
  if (!TYPES.has(rest)) throw new PromParseError(`line ${n}: bad TYPE ${rest}`);
  if (f.type !== "untyped" || (f as { typed?: true }).typed) {
    throw new PromParseError(`line ${n}: second TYPE for ${name}`);
  }
  f.type = rest as PromFamily["type"];
  (f as { typed?: true }).typed = true;
}

function parseSample(line: string, n: number): PromSample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^]*\})? (\S+)(?: (-?\d+))?$/.exec(line);
  if (!m) throw new PromParseError(`line ${n}: bad sample line ${JSON.stringify(line)}`);
  const [, name, rawLabels, rawValue] = m;
  return { name: name!, labels: parseLabels(rawLabels ?? "", n), value: parseValue(rawValue!, n) };
}

function parseLabels(raw: string, n: number): Record<string, string> {
  const labels: Record<string, string> = {};
  if (raw === "") return labels;
  let rest = raw.slice(1, -1);
  while (rest !== "") {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,?)/.exec(rest);
    if (!m) throw new PromParseError(`line ${n}: bad labels ${raw}`);
    const [whole, name, value, comma] = m;
    if (!LABEL.test(name!) || name!.startsWith("__")) {
      throw new PromParseError(`line ${n}: bad label name ${name}`);
    }
    if (name! in labels) throw new PromParseError(`line ${n}: label ${name} twice`);
    labels[name!] = value!.replace(/\\(["\\n])/g, (_, c: string) => c === "n" ? "\n" : c);
    rest = rest.slice(whole.length);
    if (comma === "" && rest !== "") throw new PromParseError(`line ${n}: bad labels ${raw}`);
  }
  return labels;
}

function parseValue(raw: string, n: number): number {
  if (raw === "+Inf") return Infinity;
  if (raw === "-Inf") return -Infinity;
  if (raw === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) {
    throw new PromParseError(`line ${n}: bad value ${raw}`);
  }
  return Number(raw);
}

/** A histogram's `_bucket`/`_sum`/`_count` samples belong to the family being read. */
function familyOf(sample: string, current: PromFamily | undefined): string {
  if (current?.type === "histogram") {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (sample === `${current.name}${suffix}`) return current.name;
    }
  }
  return sample;
}

function checkSampleName(f: PromFamily, sample: string, n: number): void {
  if (f.type !== "histogram" && sample !== f.name) {
    throw new PromParseError(`line ${n}: sample ${sample} in family ${f.name}`);
  }
}

function checkFamily(f: PromFamily): void {
  if (f.help === undefined) throw new PromParseError(`${f.name}: no HELP`);
  if (f.type === "untyped") throw new PromParseError(`${f.name}: no TYPE`);
  if (f.type === "counter") {
    if (!f.name.endsWith("_total")) throw new PromParseError(`counter ${f.name} without _total`);
    for (const s of f.samples) {
      if (!(s.value >= 0)) throw new PromParseError(`${f.name}: negative counter`);
    }
  }
  const seen = new Set<string>();
  for (const s of f.samples) {
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new PromParseError(`${f.name}: duplicate series ${key}`);
    seen.add(key);
  }
  if (f.type === "histogram") checkHistogram(f);
}

function checkHistogram(f: PromFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new PromParseError(`${f.name}: a bucket without le`);
      group.buckets.push([parseValue(le, 0), s.value]);
    } else if (le !== undefined) throw new PromParseError(`${f.name}: le on ${s.name}`);
    else if (s.name === `${f.name}_sum`) group.sum = s.value;
    else group.count = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${f.name}${key}`;
    if (g.sum === undefined || g.count === undefined) {
      throw new PromParseError(`${where}: no _sum or _count`);
    }
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new PromParseError(`${where}: no +Inf bucket`);
    if (last[1] !== g.count) throw new PromParseError(`${where}: +Inf bucket is not _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      const [le, v] = g.buckets[i]!;
      const [prevLe, prevV] = g.buckets[i - 1]!;
      if (!(le > prevLe)) throw new PromParseError(`${where}: buckets not in increasing le`);
      if (v < prevV) throw new PromParseError(`${where}: buckets not cumulative`);
    }
  }
}

/**
 * One sample's value.
 *
 * @param families What {@linkcode parseProm} returned.
 * @param name The sample name.
 * @param labels Its labels, exactly.
 * @returns The value, or `undefined` when there is no such series.
 * @example
 * ```ts
 * import { parseProm, sampleValue } from "./prom_parser.ts";
 * const f = parseProm('# HELP g G.\n# TYPE g gauge\ng{a="1"} 2\n');
 * console.log(sampleValue(f, "g", { a: "1" })); // 2
 * ```
 */
export function sampleValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) {
        return s.value;
      }
    }
  }
  return undefined;
}
