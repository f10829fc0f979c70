/**
 * Benchmarks of `bus/client.ts`: what `BusClient` adds to a bare WebSocket client, on the path the
 * producer uses (a `job_request` answered by `accepted`), against an in-process server on
 * 127.0.0.1 that answers every frame. The burst group is the producer's re-send after a reconnect:
 * many small frames back to back from a client socket that leaves Nagle's algorithm on (see
 * NOTES.md); because the server answers each frame, the delayed-ACK stall should not appear.
 *
 * `deno bench -A bench/client_bench.ts`
 *
 * @module
 */

import { BusClient } from "../bus/client.ts";
import { mulberry32 } from "../producer/generator.ts";

const BURST = 100;

/** Job requests with seeded random payloads, built once. */
const random = mulberry32(42);
const REQUESTS = Array.from({ length: BURST }, (_, i) =>
  JSON.stringify({
    cmd: "job_request",
    id: `bench-${i}`,
    payload: { priority: Math.floor(random() * 11), runtime: 3 + Math.floor(random() * 13) },
  }));
const PARSED = REQUESTS.map((text) => JSON.parse(text));
/** The round trip's request: the burst's first. */
const ROUND_TRIP = REQUESTS[0];
if (ROUND_TRIP === undefined) throw new Error("BURST must be at least 1");

const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen(): void {} }, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const answer = message.cmd === "register"
      ? { cmd: "registered" }
      : { cmd: "accepted", id: message.id };
    socket.send(JSON.stringify(answer));
  };
  return response;
});
const url = `ws://127.0.0.1:${server.addr.port}`;

/** Counts answers; `next(n)` resolves once `n` more have arrived. */
class Answers {
  #pending = 0;
  #resolve: (() => void) | undefined;
  received(): void {
    if (--this.#pending === 0) this.#resolve?.();
  }
  next(n: number): Promise<void> {
    this.#pending = n;
    return new Promise((resolve) => this.#resolve = resolve);
  }
}

// The bare client: a WebSocket that sent its register frame.
const bareAnswers = new Answers();
const bare = new WebSocket(url);
await new Promise((resolve) => bare.onopen = resolve);
bare.send(JSON.stringify({ cmd: "register", type: "producer", protocol: 2, name: "bare" }));
await new Promise((resolve) => bare.onmessage = resolve); // registered
bare.onmessage = () => bareAnswers.received();

// Ours.
const oursAnswers = new Answers();
const client = new BusClient(url, {
  register: () => ({ cmd: "register", type: "producer", protocol: 2, name: "ours" }),
});
const registered = new Promise((resolve) => client.addEventListener("registered", resolve));
client.start();
await registered;
client.addEventListener("message", () => oursAnswers.received());

Deno.bench({ group: "round trip", name: "bare WebSocket", baseline: true }, async () => {
  const answered = bareAnswers.next(1);
  bare.send(ROUND_TRIP);
  await answered;
});

Deno.bench({ group: "round trip", name: "BusClient" }, async () => {
  const answered = oursAnswers.next(1);
  client.send(PARSED[0]);
  await answered;
});

Deno.bench({ group: `burst of ${BURST}`, name: "bare WebSocket", baseline: true }, async () => {
  const answered = bareAnswers.next(BURST);
  for (const text of REQUESTS) bare.send(text);
  await answered;
});

Deno.bench({ group: `burst of ${BURST}`, name: "BusClient" }, async () => {
  const answered = oursAnswers.next(BURST);
  for (const message of PARSED) client.send(message);
  await answered;
});

// Closed when the module unloads (after the benches).
globalThis.addEventListener("unload", () => {
  bare.close();
  void client.close();
  void server.shutdown();
});
