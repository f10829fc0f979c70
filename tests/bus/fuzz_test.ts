import { validateCommandSpec } from "../../scheduler/command_spec.ts";
import assert from "node:assert/strict";
import { isJobId, isPriority, SCHEDULER_JOB_STATES } from "../../bus/protocol.ts";
import { parseClientMessage } from "../../bus/client_message.ts";
import { BusServer } from "../../bus/server.ts";
import { mulberry32 } from "../../producer/generator.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";

/** Random JSON-ish frames, biased towards almost-valid messages so that deep paths are hit. */
class Fuzz {
  #rand: () => number;
  constructor(seed: number) {
    this.#rand = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.#rand() * n);
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new RangeError("nothing to pick from");
    return item;
  }
  chance(p: number): boolean {
    return this.#rand() < p;
  }
  /** Any JSON value, `depth` levels deep at most. */
  value(depth = 2): unknown {
    const atoms: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      -0,
      11,
      3,
      "",
      "x",
      "a".repeat(200),
      "__proto__",
      "constructor",
      "\u0000",
      "é😀",
      Number.MAX_SAFE_INTEGER + 2,
    ];
    if (depth <= 0 || this.chance(0.6)) return this.pick(atoms);
    if (this.chance(0.5)) return Array.from({ length: this.int(4) }, () => this.value(depth - 1));
    const object: Record<string, unknown> = {};
    for (let i = this.int(4); i > 0; i--) {
      object[this.pick(["cmd", "id", "payload", "priority", "x", "__proto__", "toString"])] = this
        .value(depth - 1);
    }
    return object;
  }
  id(): unknown {
    return this.chance(0.9) ? `j${this.int(12)}` : this.value(1);
  }
  priority(): unknown {
    return this.chance(0.85) ? this.int(11) : this.value(1);
  }
  /** A message: usually well-formed in shape, with random bad fields now and then. */
  message(): unknown {
    const cmd = this.chance(0.95)
      ? this.pick(["register", "job_request", "cancel", "set_priority", "event"])
      : this.value(1);
    const m: Record<string, unknown> = { cmd };
    switch (cmd) {
      case "register":
        m.type = this.chance(0.9) ? this.pick(["producer", "scheduler", "monitor"]) : this.value(1);
        if (this.chance(0.8)) m.protocol = this.chance(0.9) ? this.pick([1, 2]) : this.value(1);
        if (this.chance(0.7)) {
          m.name = this.chance(0.9) ? this.pick(["p", "q", "s", "t"]) : this.value(1);
        }
        if (this.chance(0.7)) m.slots = this.chance(0.9) ? 1 + this.int(3) : this.value(1);
        if (this.chance(0.4)) {
          m.running = this.chance(0.9)
            ? Array.from({ length: this.int(3) }, () => this.id())
            : this.value(1);
        }
        break;
      case "job_request":
        if (this.chance(0.7)) m.id = this.id();
        m.payload = this.chance(0.9)
          ? {
            priority: this.priority(),
            runtime: this.chance(0.9) ? 0.5 : this.value(1),
            x: this.value(1),
          }
          : this.value(2);
        break;
      case "cancel":
        m.id = this.id();
        break;
      case "set_priority":
        m.id = this.id();
        m.priority = this.priority();
        break;
      case "event":
        m.id = this.id();
        m.state = this.chance(0.9)
          ? this.pick([...SCHEDULER_JOB_STATES, "requeued"])
          : this.value(1);
        if (this.chance(0.5)) {
          m.at = this.chance(0.8) ? 1_700_000_000_000 + this.int(1000) : this.value(1);
        }
        if (this.chance(0.3)) m.result = this.value(2);
        if (this.chance(0.3)) m.reason = this.value(1);
        if (this.chance(0.3)) m.requeue = this.value(1);
        break;
    }
    if (this.chance(0.2)) m[this.pick(["extra", "__proto__", "payload"])] = this.value(2);
    return m;
  }
  /** A frame's text: a message, a bare value, or broken JSON. */
  frame(): string {
    const text = JSON.stringify(this.chance(0.85) ? this.message() : this.value(3)) ?? "null";
    if (this.chance(0.05)) return text.slice(0, this.int(text.length));
    return text;
  }
}

Deno.test("parseClientMessage never throws on random JSON-ish input, and what it accepts is valid", () => {
  const fuzz = new Fuzz(7);
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const text = fuzz.frame();
    const result = parseClientMessage(text);
    if (!result.ok) {
      assert.equal(typeof result.reason, "string");
      assert.ok(result.reason.length > 0);
      continue;
    }
    accepted++;
    const m = result.message;
    switch (m.cmd) {
      case "register":
        assert.ok(["producer", "scheduler", "monitor"].includes(m.type), text);
        if (m.protocol === 2 && m.type === "scheduler") assert.ok(Number.isInteger(m.slots), text);
        for (const id of m.running ?? []) assert.ok(isJobId(id), text);
        break;
      case "job_request":
        assert.ok(isPriority(m.payload.priority), text);
        if ("command" in m.payload) assert.ok(validateCommandSpec(m.payload).ok, text);
        else assert.ok(Number.isFinite(m.payload.runtime) && m.payload.runtime > 0, text);
        if (m.id !== undefined) assert.ok(isJobId(m.id), text);
        break;
      case "set_priority":
        assert.ok(isPriority(m.priority) && isJobId(m.id), text);
        break;
      case "cancel":
      case "event":
        assert.ok(isJobId(m.id), text);
        break;
    }
  }
  assert.ok(accepted > 2_000, `only ${accepted} accepted: the fuzz is too far from valid`);
});

Deno.test("BusServer survives a few thousand random frames on every kind of connection", async () => {
  const bus = new BusServer({ port: 0, maxFrameBytes: 4096 });
  const { port } = bus.listen();
  const url = `ws://127.0.0.1:${port}/`;
  await using _bus = bus;
  const seen = new Set<string>();
  bus.addEventListener("job", (e) => seen.add(e.job.state));
  bus.addEventListener("dispatch", () => seen.add("dispatch"));
  const fuzz = new Fuzz(11);
  const roles: Message[] = [
    {}, // never registers
    { type: "producer", protocol: 2, name: "p" },
    { type: "producer", protocol: 2, name: "p" }, // a second connection of the same owner
    { type: "producer" },
    { type: "scheduler", protocol: 2, name: "s", slots: 2, running: ["j1", "j2"] },
    { type: "scheduler", protocol: 2, name: "s", slots: 1 }, // same name: a "reconnection"
    { type: "scheduler" }, // seed
    { type: "monitor", protocol: 2 },
  ];
  for (let round = 0; round < 3; round++) {
    const peers = await Promise.all(roles.map(() => WsPeer.open(url)));
    try {
      for (const [i, fields] of roles.entries()) {
        // One peer per role: peers[i] exists.
        if (Object.keys(fields).length > 0) peers[i]!.send({ cmd: "register", ...fields });
      }
      for (let i = 0; i < 1_000; i++) {
        const peer = fuzz.pick(peers);
        if (peer.socket.readyState !== WebSocket.OPEN) continue;
        if (fuzz.chance(0.002)) peer.send("x".repeat(5000)); // over maxFrameBytes: 1009
        else if (fuzz.chance(0.01)) peer.send(new Uint8Array([fuzz.int(256)]));
        else peer.send(fuzz.frame());
      }
      // let the bus read it all: a v2 producer's answers come in order, so wait for one
      await using probe = await WsPeer.open(url);
      await probe.register({ type: "producer", protocol: 2, name: `probe-${round}` });
      probe.send({ cmd: "cancel", id: "nope" });
      await probe.next((m) => m.cmd === "error" && m.op === "cancel");
    } finally {
      await Promise.all(peers.map((peer) => peer.close()));
    }
  }

  // the fuzz reached the dispatcher, not only the validation
  for (const what of ["queued", "dispatch", "started", "requeued", "cancelled", "succeeded"]) {
    assert.ok(seen.has(what), `no ${what} during the fuzz: ${[...seen]}`);
  }
  // The bus is still up and serves a good producer and a good scheduler.
  const health = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json());
  assert.equal(health.status, "ok");
  assert.equal(health.schedulers.v2 + health.schedulers.seed, 0);
  await using producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "good" });
  await using scheduler = await WsPeer.open(url);
  await scheduler.register({ type: "scheduler", protocol: 2, name: "good", slots: 1 });
  producer.send({ cmd: "job_request", id: "good-1", payload: { priority: 0, runtime: 1 } });
  await producer.next((m) => m.cmd === "accepted" && m.id === "good-1");
  for (let i = 0; i < 1_000; i++) { // fuzz jobs still queued go first: finish each one
    const job = await scheduler.next((m) => m.cmd === "job");
    scheduler.send({ cmd: "event", id: job.id, state: "succeeded" });
    if (job.id === "good-1") break;
  }
  const done = await producer.next((m) => m.cmd === "event" && m.id === "good-1" && !!m.final);
  assert.equal(done.state, "succeeded");
});
