/**
 * The attacks of issue 10 (§1), each against a real bus with `--auth`, each now failing to do
 * harm. Two live in server_test.ts's --auth tests and are not repeated here:
 * "another producer's name does not own its jobs" (a client registering with a victim's `name`
 * cannot cancel its job) and "a rogue registering as S1 cannot make the real S1 kill its job".
 */

import assert from "node:assert/strict";
import { type Message, upgradeAnswer, WsPeer } from "../fixtures/raw_ws.ts";
import { startTokenBus } from "../fixtures/token_bus.ts";

const job = (id: string, tag: string, priority = 5): Message => ({
  cmd: "job_request",
  id,
  payload: { priority, runtime: 1, tag },
});
const is = (cmd: string, id?: string) => (m: Message): boolean =>
  m.cmd === cmd && (id === undefined || m.id === id);

/** Sends `list` and returns the answer: a round trip, after which earlier frames have arrived. */
async function list(peer: WsPeer, query: Message = {}): Promise<Message[]> {
  peer.send({ cmd: "list", ...query });
  return (await peer.next(is("jobs"))).jobs as Message[];
}

Deno.test("attack: squatting another owner's id: both v-2 run, each its own payload, each seen by its owner only", async () => {
  await using b = await startTokenBus({
    alice: "producer",
    mallory: "producer",
    node: "scheduler",
  });
  await using node = await b.as("node", "scheduler", { slots: 2 });
  await using mallory = await b.as("mallory");
  mallory.send(job("v-2", "evil"));
  assert.deepEqual(await mallory.next(is("accepted")), { cmd: "accepted", id: "v-2" });
  await using alice = await b.as("alice");
  alice.send(job("v-2", "good"));
  assert.deepEqual(await alice.next(is("accepted")), { cmd: "accepted", id: "v-2" }); // no duplicate
  const given = [await node.next(is("job")), await node.next(is("job"))];
  const byId = Object.fromEntries(given.map((m) => [m.id, (m.payload as Message).tag]));
  assert.deepEqual(byId, { "mallory/v-2": "evil", "alice/v-2": "good" });
  for (const m of given) {
    node.send({ cmd: "event", id: m.id, state: "started" });
    node.send({ cmd: "event", id: m.id, state: "succeeded", result: { exitCode: 0 } });
  }
  await alice.next(is("event", "v-2"));
  const aliceDone = await alice.next((m) => m.state === "succeeded");
  const malloryDone = await mallory.next((m) => m.state === "succeeded");
  assert.deepEqual([aliceDone.id, malloryDone.id], ["v-2", "v-2"]);
  const aliceJobs = await list(alice);
  assert.deepEqual(aliceJobs.map((j) => [j.id, j.owner]), [["v-2", "alice"]]);
  assert.deepEqual(await list(alice, { owner: "mallory" }), []);
  alice.send({ cmd: "show", id: "v-2" });
  const shown = (await alice.next(is("job_info"))).job as Message;
  assert.deepEqual([shown.id, (shown.payload as Message).tag], ["v-2", "good"]);
  // Each heard only of its own job: one queued, started, succeeded each, nothing of the other's.
  const states = (peer: WsPeer): string[] =>
    peer.all().filter(is("event")).map((m) => `${m.id} ${m.state}`);
  assert.deepEqual(states(alice), ["v-2 queued", "v-2 started", "v-2 succeeded"]);
  assert.deepEqual(states(mallory), ["v-2 queued", "v-2 started", "v-2 succeeded"]);
  // A "full" id from a producer is its own plain id: no reaching into another owner's namespace.
  mallory.send({ cmd: "cancel", id: "alice/v-2" });
  assert.equal((await mallory.next(is("error"))).reason, "unknown job");
  mallory.send({ cmd: "show", id: "alice/v-2" });
  assert.equal((await mallory.next(is("error"))).reason, "unknown job");
});

Deno.test("attack: a seed client (--allow-seed-clients) cannot squat an owner's id either", async () => {
  await using b = await startTokenBus({ alice: "producer", watcher: "monitor" }, {
    allowSeedClients: true,
  });
  await using watcher = await b.as("watcher");
  await using seed = await WsPeer.open(b.url);
  await seed.register({ type: "producer" });
  seed.send(job("alice/v-3", "evil"));
  const queued = await watcher.next(is("event"));
  assert.notEqual(queued.id, "alice/v-3"); // its id was dropped: the bus assigned one
  await using alice = await b.as("alice");
  alice.send(job("v-3", "good"));
  assert.deepEqual(await alice.next(is("accepted")), {
    cmd: "accepted",
    id: "v-3",
    waiting: "no scheduler connected",
  });
});

Deno.test("attack: a producer token registering as a scheduler gets no job and cannot report one", async () => {
  await using b = await startTokenBus({ alice: "producer", mallory: "producer" });
  await using mallory = await b.open("mallory");
  mallory.send({ cmd: "register", type: "scheduler", protocol: 2, name: "S1", slots: 1000 });
  assert.deepEqual(await mallory.next(), {
    cmd: "error",
    op: "register",
    reason: "token mallory (producer) may not register as scheduler: not allowed for role producer",
  });
  await using alice = await b.as("alice");
  alice.send(job("v-1", "secret"));
  assert.deepEqual(await alice.next(is("accepted")), {
    cmd: "accepted",
    id: "v-1",
    waiting: "no scheduler connected",
  });
  for (const id of ["v-1", "alice/v-1"]) {
    mallory.send({ cmd: "event", id, state: "succeeded", result: { exitCode: 0 } });
    assert.match(
      String((await mallory.next(is("error"))).reason),
      /^event needs a connection registered as protocol 2 scheduler/,
    );
  }
  const [summary] = await list(alice);
  assert.deepEqual([summary?.id, summary?.state], ["v-1", "queued"]);
  assert.ok(!alice.all().some((m) => m.state === "succeeded"), "no fake succeeded");
  assert.ok(!mallory.all().some(is("job")), "mallory got no job");
  assert.equal(b.bus.health().schedulers.v2, 0);
});

Deno.test("attack: watching every job needs a monitor token; a monitor sees full ids", async () => {
  await using b = await startTokenBus({ alice: "producer", bob: "producer", watcher: "monitor" });
  await using snoop = await b.open("alice");
  snoop.send({ cmd: "register", type: "monitor", protocol: 2 });
  assert.match(String((await snoop.next()).reason), /not allowed for role producer$/);
  await using watcher = await b.as("watcher");
  await using bob = await b.as("bob");
  bob.send(job("b-1", "bob's"));
  await bob.next(is("accepted"));
  assert.equal((await watcher.next(is("event"))).id, "bob/b-1");
  assert.deepEqual((await list(watcher)).map((j) => j.id), ["bob/b-1"]);
  // The snooping connection, registered at last as what its token is, sees its own jobs only.
  await snoop.register({ type: "producer", protocol: 2 });
  assert.deepEqual(await list(snoop), []);
  snoop.send({ cmd: "show", id: "b-1" });
  assert.equal((await snoop.next(is("error"))).reason, "unknown job");
  assert.ok(!snoop.all().some(is("event")), "the snoop heard no event");
  // A monitor cannot act on jobs.
  watcher.send({ cmd: "cancel", id: "bob/b-1" });
  assert.match(String((await watcher.next(is("error"))).reason), /not allowed for role monitor$/);
});

Deno.test("attack: a foreign Origin is refused even with a valid token", async () => {
  await using b = await startTokenBus({ alice: "producer" });
  const answer = await upgradeAnswer(b.port, {
    authorization: `Bearer ${b.secrets.alice}`,
    origin: "https://evil.example",
  });
  assert.equal(answer.status, 403);
  assert.match(answer.body, /evil\.example/);
  const own = await upgradeAnswer(b.port, { authorization: `Bearer ${b.secrets.alice}` });
  assert.equal(own.status, 101);
});

Deno.test("admin: cancels and re-prioritises any owner's job by its full id, sees everything", async () => {
  await using b = await startTokenBus({ alice: "producer", root: "admin" });
  await using alice = await b.as("alice");
  alice.send(job("a-1", "x"));
  alice.send(job("a-2", "y"));
  await alice.next(is("accepted", "a-2"));
  await using root = await b.as("root", "monitor");
  assert.deepEqual((await list(root)).map((j) => j.id).sort(), ["alice/a-1", "alice/a-2"]);
  root.send({ cmd: "set_priority", id: "alice/a-2", priority: 1 });
  assert.deepEqual(await root.next(is("ack")), { cmd: "ack", op: "set_priority", id: "alice/a-2" });
  root.send({ cmd: "cancel", id: "alice/a-1" });
  assert.deepEqual(await root.next(is("ack")), { cmd: "ack", op: "cancel", id: "alice/a-1" });
  const cancelled = await alice.next((m) => m.state === "cancelled");
  assert.equal(cancelled.id, "a-1");
  root.send({ cmd: "show", id: "alice/a-2" });
  const shown = (await root.next(is("job_info"))).job as Message;
  assert.deepEqual([shown.id, shown.priority], ["alice/a-2", 1]);
  // An admin registered as producer: its own jobs by plain id, others' by full id.
  await using rootP = await b.as("root", "producer");
  rootP.send(job("r-1", "mine"));
  assert.equal((await rootP.next(is("accepted"))).id, "r-1");
  assert.deepEqual((await list(rootP)).map((j) => j.id).sort(), ["alice/a-1", "alice/a-2", "r-1"]);
  rootP.send({ cmd: "cancel", id: "alice/a-2" });
  assert.deepEqual(await rootP.next(is("ack")), { cmd: "ack", op: "cancel", id: "alice/a-2" });
});

Deno.test("admin: drains a scheduler by name; nobody else can", async () => {
  await using b = await startTokenBus({
    alice: "producer",
    "node-a": "scheduler",
    "node-b": "scheduler",
    root: "admin",
  });
  await using nodeA = await b.as("node-a");
  await using nodeB = await b.as("node-b");
  await using alice = await b.as("alice");
  await using root = await b.as("root", "monitor");
  for (const [peer, who] of [[alice, "producer"], [nodeB, "scheduler"]] as const) {
    peer.send({ cmd: "drain", scheduler: "node-a" });
    const refusal = String((await peer.next(is("error"))).reason);
    assert.match(refusal, new RegExp(`not allowed for role ${who}$`));
  }
  assert.ok(b.bus.status().schedulers.every((s) => !s.draining));
  root.send({ cmd: "drain", scheduler: "nobody" });
  assert.deepEqual(await root.next(is("error")), {
    cmd: "error",
    op: "drain",
    reason: "unknown scheduler nobody",
  });
  root.send({ cmd: "drain" });
  assert.match(String((await root.next(is("error"))).reason), /name the scheduler/);
  root.send({ cmd: "drain", scheduler: "node-a" });
  assert.deepEqual(await root.next(is("ack")), { cmd: "ack", op: "drain", id: "node-a" });
  const draining = b.bus.status().schedulers.map((s) => [s.name, s.draining]);
  assert.deepEqual(draining, [["node-a", true], ["node-b", false]]);
  alice.send(job("j-1", "a"));
  alice.send(job("j-2", "b"));
  assert.equal((await nodeB.next(is("job"))).id, "alice/j-1");
  await list(alice); // a round trip: a job sent to node-a would have come by now
  assert.ok(!nodeA.all().some(is("job")), "the drained scheduler got no job");
  const waiting = await list(alice, { states: ["queued"] });
  assert.ok(waiting.some((j) => j.id === "j-2"));
});
