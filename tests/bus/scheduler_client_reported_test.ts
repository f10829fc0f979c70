import assert from "node:assert/strict";
import { SchedulerClient } from "../../bus/scheduler_client.ts";
import { FakeLauncher } from "../scheduler/fake_launcher.ts";
import { FakeBus, type Message as FakeMessage } from "../fixtures/fake_bus.ts";

// SchedulerClient keeps final reports until the bus acknowledges them (`reported`), issue 11.

/** Polls `check` every 5 ms until it is true; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The events the fake bus got for job `id`. */
function eventsOf(fake: FakeBus, id: string): FakeMessage[] {
  return fake.received.filter((m) => m.cmd === "event" && m.id === id);
}

/** A fake bus answering `register` with `registered`, with a `seq` (a bus that acks) or not. */
function ackingBus(withSeq: boolean): FakeBus {
  return new FakeBus({
    answer: (message, reply) => {
      if (message.cmd !== "register") return;
      reply({
        cmd: "registered",
        type: "scheduler",
        protocol: 2,
        client: "c1",
        name: String(message.name),
        ...(withSeq ? { seq: 0 } : {}),
      });
    },
  });
}

/** The `register` messages the fake bus got. */
function registers(fake: FakeBus): FakeMessage[] {
  return fake.received.filter((m) => m.cmd === "register");
}

/** The `succeeded` reports the fake bus got for job `id`. */
function successes(fake: FakeBus, id: string): FakeMessage[] {
  return eventsOf(fake, id).filter((m) => m.state === "succeeded");
}

/** Drops the scheduler's connection from the bus's side and waits for it to register again. */
async function reconnect(fake: FakeBus): Promise<FakeMessage> {
  const before = registers(fake).length;
  for (const socket of fake.sockets) socket.close(1001, "test drops it");
  await until("registered again", () => registers(fake).length > before);
  return registers(fake).at(-1)!;
}

/** A scheduler on `fake` with a fake launcher (and a state dir if given). */
async function ackNode(
  fake: FakeBus,
  options: { stateDir?: string; name?: string } = {},
): Promise<{ launcher: FakeLauncher; client: SchedulerClient }> {
  const launcher = new FakeLauncher();
  const before = registers(fake).length;
  const client = new SchedulerClient(fake.url, {
    slots: 2,
    launch: launcher.launch,
    name: options.name ?? "a",
    backoff: { initialMs: 10, maxMs: 50 },
    ...(options.stateDir === undefined ? {} : { stateDir: options.stateDir }),
  });
  client.start();
  await until("registered", () => registers(fake).length > before);
  return { launcher, client };
}

/** Runs job `id` on the scheduler through the fake bus until its `succeeded` report arrives. */
async function runToSuccess(fake: FakeBus, launcher: FakeLauncher, id: string): Promise<void> {
  const before = successes(fake, id).length;
  fake.broadcast({ cmd: "job", id, payload: { priority: 1, runtime: 1 } });
  await until(`${id} launched`, () => launcher.live().includes(id));
  launcher.last(id).succeed();
  await until(`${id} reported`, () => successes(fake, id).length > before);
}

Deno.test("SchedulerClient keeps a final report until the bus acknowledges it and re-sends it after a reconnect", async () => {
  await using fake = ackingBus(true);
  const { launcher, client } = await ackNode(fake);
  await using _client = client;
  await runToSuccess(fake, launcher, "k");
  assert.deepEqual(client.unacknowledged, ["k"]);
  // The bus went away before storing it: the scheduler still answers for k, and reports it again.
  const again = await reconnect(fake);
  assert.deepEqual(again.running, ["k"]);
  await until("k re-sent", () => successes(fake, "k").length === 2);
  const [first, second] = successes(fake, "k");
  assert.deepEqual(second, first); // the same report, result and all
  fake.broadcast({ cmd: "reported", ids: ["k"] });
  await until("k acknowledged", () => client.unacknowledged.length === 0);
  const third = await reconnect(fake);
  assert.deepEqual(third.running, []);
  await runToSuccess(fake, launcher, "probe"); // a later report arrives: k was not re-sent
  assert.equal(successes(fake, "k").length, 2);
  assert.equal(launcher.launched.filter((job) => job.id === "k").length, 1);
});

Deno.test("SchedulerClient forgets a final report once sent to a bus that never acknowledges (no registered.seq)", async () => {
  await using fake = ackingBus(false);
  const { launcher, client } = await ackNode(fake);
  await using _client = client;
  await runToSuccess(fake, launcher, "k");
  assert.deepEqual(client.unacknowledged, []);
  const again = await reconnect(fake);
  assert.deepEqual(again.running, []);
  await runToSuccess(fake, launcher, "probe");
  assert.equal(successes(fake, "k").length, 1);
});

Deno.test("SchedulerClient gives up the oldest unacknowledged report beyond maxUnacked, with a notice", async () => {
  await using fake = ackingBus(true);
  const launcher = new FakeLauncher();
  const notices: string[] = [];
  await using client = new SchedulerClient(fake.url, {
    slots: 2,
    launch: launcher.launch,
    name: "a",
    maxUnacked: 2,
    onNotice: (message) => notices.push(message),
    backoff: { initialMs: 10, maxMs: 50 },
  });
  client.start();
  await until("registered", () => registers(fake).length === 1);
  for (const id of ["k1", "k2", "k3"]) await runToSuccess(fake, launcher, id);
  assert.deepEqual(client.unacknowledged, ["k2", "k3"]);
  assert.equal(notices.length, 1);
  assert.match(notices[0]!, /more than 2 final reports unacknowledged.*job k1/);
});

Deno.test("SchedulerClient with a state dir: a new scheduler on it reports what the last one could not", async () => {
  const stateDir = await Deno.makeTempDir();
  try {
    await using fake = ackingBus(true);
    const first = await ackNode(fake, { stateDir });
    await runToSuccess(fake, first.launcher, "k");
    await first.client.close(); // stopped before the bus acknowledged k
    const second = await ackNode(fake, { stateDir });
    await using _second = second.client;
    const register = registers(fake).at(-1)!;
    assert.deepEqual(register.running, ["k"]);
    await until("k re-sent", () => successes(fake, "k").length === 2);
    assert.deepEqual(second.client.unacknowledged, ["k"]);
    assert.equal(second.launcher.launched.length, 0); // nothing ran again
    fake.broadcast({ cmd: "reported", ids: ["k"] });
    await until("k acknowledged", () => second.client.unacknowledged.length === 0);
    await second.client.close();
    const third = await ackNode(fake, { stateDir });
    await using _third = third.client;
    assert.deepEqual(registers(fake).at(-1)!.running, []);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("SchedulerClient with a state dir ignores a torn last line with a notice", async () => {
  const stateDir = await Deno.makeTempDir();
  try {
    const final = { cmd: "event", id: "k", state: "failed", at: 1, reason: "exit code 1" };
    await Deno.writeTextFile(
      `${stateDir}/outcomes.jsonl`,
      `${JSON.stringify({ final })}\n{"final":{"cmd":"event","id":"to`,
    );
    await using fake = ackingBus(true);
    const notices: string[] = [];
    await using client = new SchedulerClient(fake.url, {
      slots: 1,
      launch: new FakeLauncher().launch,
      name: "a",
      stateDir,
      onNotice: (message) => notices.push(message),
      backoff: { initialMs: 10, maxMs: 50 },
    });
    assert.match(notices.join("\n"), /ignored a torn last line/);
    client.start();
    await until("registered", () => registers(fake).length === 1);
    assert.deepEqual(registers(fake)[0]!.running, ["k"]);
    await until("k re-sent", () => eventsOf(fake, "k").length === 1);
    assert.deepEqual(eventsOf(fake, "k")[0], final);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("SchedulerClient refuses a state dir of another scheduler, or one in use", async () => {
  const stateDir = await Deno.makeTempDir();
  try {
    const make = (name: string): SchedulerClient =>
      new SchedulerClient("ws://127.0.0.1:9", {
        slots: 1,
        launch: new FakeLauncher().launch,
        name,
        stateDir,
      });
    await using a = make("a");
    assert.throws(() => make("b"), {
      name: "OutcomeJournalError",
      message: new RegExp(`state dir ${stateDir} belongs to scheduler "a", not "b"`),
    });
    assert.throws(() => make("a"), { name: "OutcomeJournalError", message: /is in use/ });
    await a.close();
    await using _again = make("a"); // released by close
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
