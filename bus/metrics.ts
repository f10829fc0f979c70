/**
 * A small metrics registry: counters, gauges and histograms with labels, rendered in the
 * Prometheus text exposition format 0.0.4 (what `GET /metrics` answers).
 *
 * @module
 */

/** The content type of the text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A metric's or a label's name that breaks Prometheus' naming rules, or a bad value. */
export class MetricsError extends Error {
  /** `"MetricsError"`. */
  override name = "MetricsError";
}

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** What every metric kind takes. */
export interface MetricOptions {
  /** The `# HELP` text. */
  help: string;
  /**
   * The label names its series carry (never a job id: one series per job would grow forever).
   * @default {[]}
   */
  labelNames?: readonly string[];
}

/** What {@linkcode MetricsRegistry.histogram} takes. */
export interface HistogramOptions extends MetricOptions {
  /**
   * The buckets' upper bounds, increasing (`+Inf` is added).
   * @default {DEFAULT_BUCKETS}
   */
  buckets?: readonly number[];
}

/** Buckets in seconds from 5 ms to an hour. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  900,
  3600,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** What every metric has: a name, a help text, label names, its sample lines. */
export abstract class Metric {
  /** The label names its series carry. */
  readonly labelNames: readonly string[];
  /**
   * Checks the names.
   *
   * @param name The metric's name.
   * @param help Its `# HELP` text.
   * @param labelNames Its label names.
   * @throws {MetricsError} For a name or label name that breaks Prometheus' rules.
   */
  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    if (!NAME.test(name)) throw new MetricsError(`bad metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) {
      if (!LABEL.test(label) || label.startsWith("__") || label === "le") {
        throw new MetricsError(`${name}: bad label name ${JSON.stringify(label)}`);
      }
    }
    this.labelNames = labelNames;
  }
  /**
   * A series' key: its labels rendered, checked against the label names.
   *
   * @param labels The labels.
   * @returns `{a="1",b="2"}`, or `""` without labels.
   * @throws {MetricsError} When the labels are not exactly the label names.
   */
  protected key(labels: Labels): string {
    const names = Object.keys(labels);
    const unknown = names.find((n) => !this.labelNames.includes(n));
    if (unknown !== undefined || names.length !== this.labelNames.length) {
      throw new MetricsError(
        `${this.name}: labels must be exactly [${this.labelNames.join(", ")}], got [${
          names.join(", ")
        }]`,
      );
    }
    return renderLabels(this.labelNames.map((n) => [n, labels[n]!]));
  }
  /** The sample lines (without `# HELP` and `# TYPE`). */
  abstract render(): string[];
  /** The `# TYPE`: counter, gauge or histogram. */
  abstract get type(): string;
}

/** A value that only goes up (its name ends `_total`). */
export class Counter extends Metric {
  #values = new Map<string, number>();
  /** `"counter"`. */
  get type(): string {
    return "counter";
  }
  /**
   * Adds to a series.
   *
   * @param labels Its labels (`{}` without label names).
   * @param by How much (≥ 0).
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const c = new MetricsRegistry().counter("x_total", { help: "x", labelNames: ["a"] });
   * c.inc({ a: "1" });
   * console.log(c.get({ a: "1" })); // 1
   * ```
   */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new MetricsError(`${this.name}: a counter cannot go down (${by})`);
    const key = this.key(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }
  /**
   * A series' value.
   *
   * @param labels Its labels.
   * @returns The value (0 for a series never touched).
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * console.log(new MetricsRegistry().counter("y_total", { help: "y" }).get()); // 0
   * ```
   */
  get(labels: Labels = {}): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }
  /** The sample lines. */
  render(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

/** A value that goes up and down, set directly or at scrape time. */
export class Gauge extends Metric {
  #values = new Map<string, number>();
  /** `"gauge"`. */
  get type(): string {
    return "gauge";
  }
  /**
   * Sets a series.
   *
   * @param labels Its labels.
   * @param value The value.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const g = new MetricsRegistry().gauge("g", { help: "g" });
   * g.set({}, 3);
   * console.log(g.get()); // 3
   * ```
   */
  set(labels: Labels, value: number): void {
    this.#values.set(this.key(labels), value);
  }
  /**
   * A series' value.
   *
   * @param labels Its labels.
   * @returns The value (0 when never set).
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * console.log(new MetricsRegistry().gauge("h", { help: "h" }).get()); // 0
   * ```
   */
  get(labels: Labels = {}): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }
  /**
   * Forgets every series (before a scrape sets the current ones).
   *
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const g = new MetricsRegistry().gauge("k", { help: "k" });
   * g.set({}, 1);
   * g.reset();
   * console.log(g.render()); // []
   * ```
   */
  reset(): void {
    this.#values.clear();
  }
  /** The sample lines. */
  render(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

interface HistogramSeries {
  labels: [string, string][];
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted in buckets, with their sum and count. */
export class Histogram extends Metric {
  /** The buckets' upper bounds (without `+Inf`). */
  readonly buckets: readonly number[];
  #series = new Map<string, HistogramSeries>();
  /**
   * Checks the buckets.
   *
   * @param name Its name.
   * @param options Help, label names, buckets.
   * @throws {MetricsError} For buckets that do not increase, or bad names.
   */
  constructor(name: string, options: HistogramOptions) {
    super(name, options.help, options.labelNames);
    const buckets = options.buckets ?? DEFAULT_BUCKETS;
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i]! > buckets[i - 1]!)) {
        throw new MetricsError(`${name}: buckets must increase, got ${buckets.join(", ")}`);
      }
    }
    this.buckets = buckets;
  }
  /** `"histogram"`. */
  get type(): string {
    return "histogram";
  }
  /**
   * Counts one observation.
   *
   * @param labels Its labels.
   * @param value The value (seconds for a duration).
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const h = new MetricsRegistry().histogram("d_seconds", { help: "d", buckets: [1, 2] });
   * h.observe({}, 1.5);
   * console.log(h.render().at(-1)); // d_seconds_count 1
   * ```
   */
  observe(labels: Labels, value: number): void {
    if (Number.isNaN(value)) throw new MetricsError(`${this.name}: cannot observe NaN`);
    const series = this.#get(labels);
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) series.counts[i]!++;
    series.sum += value;
    series.count++;
  }
  /**
   * Makes a series with no observations yet (shown as zeros) if there is none.
   *
   * @param labels Its labels.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const h = new MetricsRegistry().histogram("e_seconds", { help: "e", labelNames: ["a"] });
   * h.init({ a: "x" });
   * console.log(h.render().at(-1)); // e_seconds_count{a="x"} 0
   * ```
   */
  init(labels: Labels): void {
    this.#get(labels);
  }

  #get(labels: Labels): HistogramSeries {
    const key = this.key(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = {
        labels: this.labelNames.map((n) => [n, labels[n]!]),
        counts: this.buckets.map(() => 0),
        sum: 0,
        count: 0,
      };
      this.#series.set(key, series);
    }
    return series;
  }

  /** The sample lines: cumulative buckets with `+Inf`, then `_sum` and `_count`. */
  render(): string[] {
    const lines: string[] = [];
    for (const s of this.#series.values()) {
      let cumulative = 0;
      const bounds = [...this.buckets, Infinity];
      bounds.forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        const labels = renderLabels([...s.labels, ["le", formatValue(le)]]);
        lines.push(`${this.name}_bucket${labels} ${le === Infinity ? s.count : cumulative}`);
      });
      lines.push(`${this.name}_sum${renderLabels(s.labels)} ${formatValue(s.sum)}`);
      lines.push(`${this.name}_count${renderLabels(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

/**
 * The metrics of one process, in the order they were made, and what runs before each render
 * (gauges read from a snapshot at scrape time).
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const registry = new MetricsRegistry();
 * const jobs = registry.counter("app_jobs_total", { help: "Jobs.", labelNames: ["priority"] });
 * jobs.inc({ priority: "3" });
 * console.log(registry.render());
 * // # HELP app_jobs_total Jobs.
 * // # TYPE app_jobs_total counter
 * // app_jobs_total{priority="3"} 1
 * ```
 */
export class MetricsRegistry {
  #metrics: Metric[] = [];
  #collectors: (() => void)[] = [];

  /**
   * Makes a counter.
   *
   * @param name Its name (ends `_total`).
   * @param options Help and label names.
   * @returns The counter.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * new MetricsRegistry().counter("a_total", { help: "a" }).inc();
   * ```
   */
  counter(name: string, options: MetricOptions): Counter {
    if (!name.endsWith("_total")) throw new MetricsError(`counter ${name} must end with _total`);
    const counter = this.#add(new Counter(name, options.help, options.labelNames));
    if (counter.labelNames.length === 0) counter.inc({}, 0); // a series from the start
    return counter;
  }

  /**
   * Makes a gauge.
   *
   * @param name Its name.
   * @param options Help and label names.
   * @returns The gauge.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * new MetricsRegistry().gauge("b", { help: "b" }).set({}, 1);
   * ```
   */
  gauge(name: string, options: MetricOptions): Gauge {
    return this.#add(new Gauge(name, options.help, options.labelNames));
  }

  /**
   * Makes a histogram.
   *
   * @param name Its name.
   * @param options Help, label names, buckets.
   * @returns The histogram.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * new MetricsRegistry().histogram("c_seconds", { help: "c" }).observe({}, 0.2);
   * ```
   */
  histogram(name: string, options: HistogramOptions): Histogram {
    const histogram = this.#add(new Histogram(name, options));
    if (histogram.labelNames.length === 0) histogram.init({}); // a series from the start
    return histogram;
  }

  /**
   * Runs `collect` before each render (to set gauges from the current state).
   *
   * @param collect The callback.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * const registry = new MetricsRegistry();
   * const up = registry.gauge("up", { help: "Up." });
   * registry.onCollect(() => up.set({}, 1));
   * console.log(registry.render().endsWith("up 1\n")); // true
   * ```
   */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /**
   * Renders every metric in the text exposition format 0.0.4.
   *
   * @returns The text, each line ending with `\n`.
   * @example
   * ```ts
   * import { MetricsRegistry } from "./metrics.ts";
   * console.log(new MetricsRegistry().render()); // (empty)
   * ```
   */
  render(): string {
    for (const collect of this.#collectors) collect();
    const lines: string[] = [];
    for (const m of this.#metrics) {
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
      lines.push(...m.render());
    }
    return lines.map((l) => `${l}\n`).join("");
  }

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) {
      throw new MetricsError(`metric ${metric.name} already exists`);
    }
    this.#metrics.push(metric);
    return metric;
  }
}

function renderLabels(pairs: readonly [string, string][]): string {
  if (pairs.length === 0) return "";
  return `{${pairs.map(([n, v]) => `${n}="${escapeLabel(v)}"`).join(",")}}`;
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function escapeHelp(help: string): string {
  return help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}
