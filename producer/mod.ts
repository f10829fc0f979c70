/**
 * `producer/`: submit jobs to the bus and follow them. {@linkcode JobGenerator} draws seeded
 * random jobs and waits (as the seed's producer does); {@linkcode Producer} sends them through a
 * reconnecting bus client, re-sends what the bus has not finished after each reconnect, and
 * dispatches the feedback the bus gives on each job. {@linkcode JobClient} is the client of one
 * owner under `deno task submit` and `deno task jobs`: command jobs submitted under ids of its
 * own, their ends (result and output tails) waited for across reconnects, queries (`list`,
 * `show`), cancel and priority changes. The CLIs are `producer/main.ts` (`deno task
 * producer`), `producer/submit.ts` and `producer/jobs.ts`.
 *
 * @example
 * ```ts
 * import { JobGenerator, Producer } from "./mod.ts";
 * const generator = new JobGenerator({ seed: 1 });
 * // Port 9: no bus there (an example must never submit to a bus a developer has running).
 * await using producer = new Producer("ws://127.0.0.1:9", { name: "docs" });
 * producer.start();
 * console.log(producer.submit(generator.nextJob()).id); // "docs-1"
 * ```
 *
 * @module
 */

export * from "./generator.ts";
export * from "./producer.ts";
export * from "./job_client.ts";
export * from "./errors.ts";
