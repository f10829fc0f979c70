/**
 * The job bus: a WebSocket server between producers, schedulers and monitors, its wire
 * protocol (`docs/protocol.md`), its bounded priority queue and its delivery policy. The
 * clients' WebSocket (`ws_client.ts`, Nagle's algorithm off) is internal: `BusClient` uses it.
 *
 * @example
 * ```ts
 * import { BusServer } from "./mod.ts";
 * await using bus = new BusServer({ port: 0 });
 * console.log(bus.listen().port > 0); // true
 * ```
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./errors.ts";
export * from "./job_queue.ts";
export * from "./dispatcher.ts";
export * from "./job_placer.ts";
export * from "./job_store.ts";
export * from "./sqlite_store.ts";
export * from "./data_dir.ts";
export * from "./store_errors.ts";
export * from "./server.ts";
export * from "./server_events.ts";
export * from "./metrics.ts";
export * from "./bus_metrics.ts";
export * from "./bus_summary.ts";
export * from "./token_store.ts";
export * from "./auth.ts";
export * from "./conn_limits.ts";
export * from "./rate_limiter.ts";
export * from "./client_message.ts";
export * from "./server_message.ts";
export * from "./backoff.ts";
export * from "./client.ts";
export * from "./event_cursor.ts";
export * from "./scheduler_client.ts";
