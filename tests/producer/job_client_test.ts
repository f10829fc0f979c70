import assert from "node:assert/strict";
import { JobClient, type JobOutputEvent } from "../../producer/job_client.ts";
import { JobClientRefusedError, JobOpError } from "../../producer/errors.ts";
import { BusServer } from "../../bus/server.ts";
import { TokenStore } from "../../bus/token_store.ts";
import { answerRegister, FakeBus, type Message } from "../fixtures/fake_bus.ts";

const SPEC = { priority: 3, command: ["sh", "-c", "exit 3"] };
const RESULT = {
  exitCode: 3,
  signal: null,
  durationMs: 12,
  startedAt: 1,
  endedAt: 13,
  scheduler: "node-a",
  attempts: 1,
  stdoutTail: "hi\n",
};

/** A client of `bus` whose re-check is off unless asked. */
function clientOf(bus: FakeBus, recheckMs = 0): JobClient {
  const client = new JobClient(bus.url, { owner: "ada", recheckMs, backoff: { initialMs: 5 } });
  client.start();
  return client;
}

Deno.test("JobClient registers as a producer under its owner's name", async () => {
  await using bus = new FakeBus();
  await using client = clientOf(bus);
  await client.ready();
  assert.deepEqual(bus.received[0], {
    cmd: "register",
    type: "producer",
    protocol: 2,
    name: "ada",
  });
});

Deno.test("JobClient.submit answers accepted, and wait resolves with the final event's result", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const { id } = message;
      reply({ cmd: "accepted", id, waiting: "no scheduler connected" });
      reply({ cmd: "event", id, state: "started", at: 1, priority: 3, scheduler: "node-a" });
      reply({
        cmd: "event",
        id,
        state: "failed",
        at: 2,
        priority: 3,
        scheduler: "node-a",
        result: RESULT,
        final: true,
      });
    },
  });
  await using client = clientOf(bus);
  const states: string[] = [];
  client.addEventListener("job", (event) => states.push(event.state));
  const answer = await client.submit(SPEC, { id: "j-000000000001" });
  assert.deepEqual(answer, {
    status: "accepted",
    id: "j-000000000001",
    waiting: "no scheduler connected",
  });
  const end = await client.wait("j-000000000001");
  assert.deepEqual(end, {
    id: "j-000000000001",
    state: "failed",
    result: RESULT,
    scheduler: "node-a",
  });
  assert.deepEqual(states, ["started", "failed"]);
  const sent = bus.received.find((m) => m.cmd === "job_request");
  assert.deepEqual(sent, { cmd: "job_request", id: "j-000000000001", payload: SPEC });
});

Deno.test("JobClient.submit answers rejected with the bus's reason", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") {
        reply({ cmd: "rejected", id: message.id, reason: "no scheduler allows command ffmpeg" });
      }
    },
  });
  await using client = clientOf(bus);
  assert.deepEqual(await client.submit(SPEC, { id: "j-1" }), {
    status: "rejected",
    id: "j-1",
    reason: "no scheduler allows command ffmpeg",
  });
});

Deno.test("JobClient.submit of an id the bus knew already answers duplicate", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") {
        reply({ cmd: "accepted", id: message.id, duplicate: true, state: "started" });
      }
    },
  });
  await using client = clientOf(bus);
  assert.deepEqual(await client.submit(SPEC, { id: "j-1" }), {
    status: "duplicate",
    id: "j-1",
    state: "started",
  });
});

Deno.test("JobClient.wait survives a reconnect: the re-sent request's duplicate answer ends it", async () => {
  let connections = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") connections++;
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      if (connections === 1) return reply({ cmd: "accepted", id: message.id });
      // Second connection: the job ended meanwhile (its final event was lost with the first).
      reply({
        cmd: "accepted",
        id: message.id,
        duplicate: true,
        state: "failed",
        final: true,
        scheduler: "node-a",
        result: RESULT,
      });
    },
  });
  await using client = clientOf(bus);
  assert.equal((await client.submit(SPEC, { id: "j-2" })).status, "accepted");
  const waited = client.wait("j-2");
  for (const socket of bus.sockets) socket.close(1011, "gone");
  const end = await waited;
  assert.equal(end.state, "failed");
  assert.deepEqual(end.result, RESULT);
  assert.equal(connections, 2);
  assert.equal(bus.received.filter((m) => m.cmd === "job_request").length, 2);
});

Deno.test("JobClient re-sends an unanswered submission after a reconnect and takes its duplicate as accepted", async () => {
  let connections = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") connections++;
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      if (connections === 1) { // taken, but the connection drops before the answer
        for (const socket of bus.sockets) socket.close(1011, "gone");
        return;
      }
      reply({ cmd: "accepted", id: message.id, duplicate: true, state: "queued" });
    },
  });
  await using client = clientOf(bus);
  assert.deepEqual(await client.submit(SPEC, { id: "j-3" }), { status: "accepted", id: "j-3" });
});

Deno.test("JobClient.wait never hangs when the final event is lost: it asks again with show", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") reply({ cmd: "accepted", id: message.id });
      if (message.cmd === "show") {
        reply({
          cmd: "job_info",
          job: {
            id: message.id,
            priority: 3,
            state: "succeeded",
            owner: "ada",
            submittedAt: 1,
            attempts: 1,
            payload: SPEC,
            result: { ...RESULT, exitCode: 0 },
            history: [],
          },
        });
      }
    },
  });
  await using client = clientOf(bus, 20); // no event ever comes: the re-check finds the end
  await client.submit(SPEC, { id: "j-4" });
  const end = await client.wait("j-4");
  assert.equal(end.state, "succeeded");
  assert.equal(end.result?.exitCode, 0);
  assert.ok(bus.received.some((m) => m.cmd === "show" && m.id === "j-4"));
});

Deno.test("JobClient.wait for a job it did not submit asks show; an unknown job rejects", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "show") return;
      if (message.id === "j-gone") {
        return reply({ cmd: "error", op: "show", id: message.id, reason: "unknown job" });
      }
      reply({
        cmd: "job_info",
        job: { id: message.id, priority: 1, state: "started", owner: "bob", submittedAt: 1 },
      });
      reply({ cmd: "event", id: message.id, state: "timed_out", at: 5, priority: 1, final: true });
    },
  });
  await using client = clientOf(bus);
  assert.equal((await client.wait("j-5")).state, "timed_out");
  await assert.rejects(client.wait("j-gone"), (error: unknown) => {
    assert.ok(error instanceof JobOpError);
    assert.equal(error.reason, "unknown job");
    return true;
  });
});

Deno.test("JobClient.list, show, cancel and setPriority send the requests and read the answers", async () => {
  const job = {
    id: "j-6",
    priority: 2,
    state: "queued",
    owner: "ada",
    submittedAt: 1,
    attempts: 0,
  };
  await using bus = new FakeBus({
    answer: (message: Message, reply) => {
      answerRegister(message, reply);
      switch (message.cmd) {
        case "list":
          return reply({ cmd: "jobs", jobs: [job], total: 7 });
        case "show":
          return reply({ cmd: "job_info", job: { ...job, payload: SPEC, history: [] } });
        case "cancel":
          return reply({ cmd: "error", op: "cancel", id: message.id, reason: "not your job" });
        case "set_priority":
          return reply({ cmd: "ack", op: "set_priority", id: message.id });
      }
    },
  });
  await using client = clientOf(bus);
  const list = await client.list({ states: ["queued"], name: "ren", owner: "ada", limit: 5 });
  assert.deepEqual(list, { jobs: [job], total: 7 });
  assert.deepEqual(bus.received.find((m) => m.cmd === "list"), {
    cmd: "list",
    states: ["queued"],
    name: "ren",
    owner: "ada",
    limit: 5,
  });
  assert.deepEqual((await client.show("j-6")).payload, SPEC);
  await assert.rejects(client.cancel("j-6"), /cancel j-6: not your job/);
  await client.setPriority("j-6", 0);
  assert.deepEqual(bus.received.at(-1), { cmd: "set_priority", id: "j-6", priority: 0 });
});

Deno.test("JobClient dispatches output events of followed jobs", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      reply({ cmd: "accepted", id: message.id });
      reply({ cmd: "output", id: message.id, stream: "stdout", data: "a\nb" });
      reply({ cmd: "output", id: message.id, stream: "stderr", data: "", dropped: 10 });
    },
  });
  await using client = clientOf(bus);
  const seen: string[] = [];
  const both = Promise.withResolvers<void>();
  client.addEventListener("output", (event: JobOutputEvent) => {
    seen.push(`${event.id} ${event.stream} ${JSON.stringify(event.data)} ${event.dropped}`);
    if (seen.length === 2) both.resolve();
  });
  await client.submit({ ...SPEC, follow: true }, { id: "j-7" });
  await both.promise;
  assert.deepEqual(seen, ['j-7 stdout "a\\nb" 0', 'j-7 stderr "" 10']);
});

Deno.test("JobClient.close rejects what is pending, and ready() without a bus gives up on its signal", async () => {
  const client = new JobClient("ws://127.0.0.1:9", { owner: "ada", backoff: { initialMs: 5 } });
  client.start();
  await assert.rejects(client.ready(AbortSignal.timeout(30)));
  const shown = assert.rejects(client.show("j-8"), /closed/);
  const waited = assert.rejects(client.wait("j-9"), /closed/);
  await client.close();
  await shown;
  await waited;
});

Deno.test("JobClient fails its waits with JobClientRefusedError when the bus refuses it later (a revoked token)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await TokenStore.load(`${dir}/auth.json`, { missingOk: true });
    const secret = await store.add("alice", "producer");
    await using bus = new BusServer({ port: 0, auth: store });
    const { port } = bus.listen();
    await using client = new JobClient(`ws://127.0.0.1:${port}`, {
      owner: "alice",
      token: secret,
      backoff: { initialMs: 10, maxMs: 20 },
    });
    client.start();
    await client.ready();
    const answer = await client.submit({ priority: 3, command: ["true"] }, { id: "j-1" });
    assert.equal(answer.status, "accepted"); // no scheduler: it waits
    const waiting = client.wait("j-1");
    // `token revoke` in another process: the bus notices the file change within a second or so
    // and closes us (1008); the reconnect is refused (401).
    await (await TokenStore.load(`${dir}/auth.json`)).revoke("alice");
    await assert.rejects(waiting, (error: unknown) => {
      assert.ok(error instanceof JobClientRefusedError, String(error));
      assert.match(error.message, /401|unknown token/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A v2 `registered` answer carrying the bus's latest event seq. */
function registered(seq?: number): object {
  return { cmd: "registered", type: "producer", protocol: 2, client: "c1", name: "ada", seq };
}

/** A job event with its seq. */
function event(id: string, state: string, seq?: number, extra: object = {}): object {
  return {
    cmd: "event",
    id,
    state,
    at: 1,
    priority: 3,
    ...(seq === undefined ? {} : { seq }),
    ...extra,
  };
}

/** Resolves once the client has dispatched a `job` event for `id` in `state`. */
function heard(client: JobClient, id: string, state: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (e: { id: string; state: string }): void => {
      if (e.id !== id || e.state !== state) return;
      client.removeEventListener("job", check);
      resolve();
    };
    client.addEventListener("job", check);
  });
}

Deno.test("JobClient registers again with after = the last event seq seen, and ignores replayed events", async () => {
  let connections = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") {
        connections++;
        reply(registered(connections === 1 ? 10 : 14));
        // The replay starts at 11: what the client saw already (seq <= 12) must be ignored.
        if (connections === 2) {
          reply(event("j-1", "started", 11));
          reply(event("j-x", "queued", 12));
          reply(event("j-1", "failed", 13, { final: true, result: RESULT }));
        }
        return;
      }
      if (message.cmd !== "job_request") return;
      if (connections > 1) {
        return reply({
          cmd: "accepted",
          id: message.id,
          duplicate: true,
          state: "failed",
          final: true,
        });
      }
      reply({ cmd: "accepted", id: message.id });
      reply(event("j-1", "started", 11));
      reply(event("j-x", "queued", 12)); // another job of the owner's
    },
  });
  await using client = clientOf(bus);
  const states: string[] = [];
  client.addEventListener("job", (e) => states.push(`${e.state} ${e.id}`));
  const queued = heard(client, "j-x", "queued");
  assert.equal((await client.submit(SPEC, { id: "j-1" })).status, "accepted");
  const waited = client.wait("j-1");
  await queued;
  for (const socket of bus.sockets) socket.close(1011, "gone");
  const end = await waited;
  assert.deepEqual(end, { id: "j-1", state: "failed", result: RESULT });
  assert.deepEqual(states, ["started j-1", "queued j-x", "failed j-1"]);
  const registers = bus.received.filter((m) => m.cmd === "register");
  assert.equal(registers[0]?.after, undefined, "the first registration resumes nothing");
  assert.equal(registers[1]?.after, 12);
});

Deno.test("JobClient on resync asks again for the jobs it waits for and takes their outcome", async () => {
  let requests = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") return reply(registered(5));
      if (message.cmd !== "job_request") return;
      if (++requests === 1) {
        reply({ cmd: "accepted", id: message.id });
        return reply(event("j-1", "started", 6));
      }
      reply({ cmd: "accepted", id: message.id, duplicate: true, state: "succeeded", final: true });
    },
  });
  await using client = clientOf(bus);
  const states: string[] = [];
  client.addEventListener("job", (e) => states.push(`${e.state} ${e.id}`));
  const started = heard(client, "j-1", "started");
  await client.submit(SPEC, { id: "j-1" });
  const waited = client.wait("j-1");
  await started;
  const after = heard(client, "j-z", "queued");
  bus.broadcast({ cmd: "resync", reason: "events before seq 40 are no longer kept", seq: 40 });
  bus.broadcast(event("j-y", "queued", 30)); // at or below the resync's seq: ignored
  bus.broadcast(event("j-z", "queued", 41));
  assert.equal((await waited).state, "succeeded");
  await after;
  assert.equal(requests, 2, "the job_request was re-sent on resync");
  assert.deepEqual(states, ["started j-1", "queued j-z"]);
});

Deno.test("JobClient with an older bus (no seq anywhere) takes every event and registers without after", async () => {
  let connections = 0;
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd === "register") connections++;
      answerRegister(message, reply);
      if (message.cmd === "job_request" && connections === 1) {
        reply({ cmd: "accepted", id: message.id });
        reply(event("j-1", "started"));
        reply(event("j-1", "started")); // the same twice: taken twice, as always
      } else if (message.cmd === "job_request") {
        reply({
          cmd: "accepted",
          id: message.id,
          duplicate: true,
          state: "succeeded",
          final: true,
        });
      }
    },
  });
  await using client = clientOf(bus);
  let started = 0;
  const twice = Promise.withResolvers<void>();
  client.addEventListener("job", (e) => {
    if (e.state === "started" && ++started === 2) twice.resolve();
  });
  await client.submit(SPEC, { id: "j-1" });
  const waited = client.wait("j-1");
  await twice.promise;
  for (const socket of bus.sockets) socket.close(1011, "gone");
  assert.equal((await waited).state, "succeeded");
  const registers = bus.received.filter((m) => m.cmd === "register");
  assert.equal(registers.length, 2);
  assert.ok(registers.every((m) => !("after" in m)));
});
