import assert from "node:assert/strict";
import { cliRunner } from "../fixtures/cli_run.ts";
import { JobGenerator } from "../../producer/generator.ts";
import { main, USAGE } from "../../producer/main.ts";
import { answerRegister, FakeBus, type Message } from "../fixtures/fake_bus.ts";
import { AuthBus } from "../fixtures/auth_bus.ts";
import { tlsTest } from "../fixtures/tls_certs.ts";

/** Runs the CLI's `main` with captured output. */
const run = cliRunner(main);

/** A bus that accepts every job and runs it at once: started, then succeeded. */
function runningAtOnce(message: Message, reply: (message: object) => void): void {
  answerRegister(message, reply);
  if (message.cmd !== "job_request") return;
  const { id } = message;
  const priority = (message.payload as { priority: number }).priority;
  reply({ cmd: "accepted", id });
  for (const state of ["queued", "started", "succeeded"]) {
    reply({ cmd: "event", id, state, at: Date.now(), priority, scheduler: "node-a" });
  }
}

Deno.test("producer main runs the design-card command (with the literal --) until stopped", async () => {
  await using bus = new FakeBus({ answer: runningAtOnce });
  const controller = new AbortController();
  const { code, out, err } = await run(
    ["--", "-g", "-s", "2", "--url", bus.url, "--name", "card"],
    controller.signal,
    (line) => {
      if (line.includes("card-1 succeeded")) controller.abort();
    },
  );
  assert.equal(code, 0);
  assert.deepEqual(err, []);
  const text = out.join("\n");
  assert.match(out[0]!, /^\d\d:\d\d:\d\d\.\d{3} producer card → /);
  assert.match(text, /a gaussian wait of 5 ± 2 s/);
  assert.match(text, /card-1 \(priority \d+, runtime \d+ s\) submitted.*; next in \d+\.\d\d s/);
  assert.match(text, / connected to the bus at /);
  assert.match(text, /card-1 accepted, queued in the bus$/m);
  assert.equal(out.filter((line) => line.includes("card-1 ")).length, 4, "four lines a job");
  assert.match(text, /card-1 started on node-a after/);
  assert.match(text, /card-1 succeeded on node-a/);
  assert.match(out.at(-1)!, /produced 1 job \(stopped\)$/);
});

Deno.test("producer main --count N --wait exits once all have finished, with a summary", async () => {
  await using bus = new FakeBus({ answer: runningAtOnce });
  const args = ["--url", bus.url, "--count", "4", "--wait", "-p", "0.005", "--seed", "42"];
  const { code, out } = await run([...args, "--name", "w", "--priority", "1-2"]);
  assert.equal(code, 0);
  const text = out.join("\n");
  assert.match(text, /w-4 .*submitted; that was the last one/);
  assert.match(text, /produced 4 jobs$/m);
  assert.match(text, /outcomes: succeeded 4$/m);
  assert.match(text, /priority [12]: \d finished, \d started, mean wait \d+\.\d\d s/);
  // --seed replays the generator's sequence.
  const generator = new JobGenerator({ seed: 42, priority: [1, 2] });
  const sent = bus.received.filter((m) => m.cmd === "job_request").map((m) => m.payload);
  assert.deepEqual(sent, [1, 2, 3, 4].map(() => generator.nextJob()));
});

Deno.test("producer main --count 1 --wait gets the outcome that came while it was disconnected", async () => {
  await using bus = new FakeBus();
  let registrations = 0;
  bus.answer = (message, reply) => {
    if (message.cmd === "register") registrations++;
    answerRegister(message, reply);
    if (message.cmd !== "job_request") return;
    const { id } = message;
    if (registrations === 1) { // accepted and started, then the producer loses the bus
      reply({ cmd: "accepted", id });
      reply({ cmd: "event", id, state: "started", at: Date.now(), priority: 1, scheduler: "n" });
      for (const socket of bus.sockets) socket.close(1001, "bus going away");
    } else { // meanwhile the job succeeded: the bus says so when the producer re-sends it
      const result = { code: 0, durationMs: 5 };
      reply({ cmd: "accepted", id, duplicate: true, state: "succeeded", final: true, result });
    }
  };
  const args = ["--url", bus.url, "--count", "1", "--wait", "--priority", "1", "--name", "d"];
  const { code, out } = await run(args);
  assert.equal(code, 0);
  const text = out.join("\n");
  assert.match(text, /lost the bus \(code 1001, bus going away\)/);
  assert.match(text, /d-1 re-sent after reconnecting \(send #2\)/);
  assert.match(text, /d-1 the bus had it already: succeeded on n/);
  assert.match(text, /d-1 succeeded on n \(\d+\.\d\d s after submission, ran \d+\.\d\d s\)/);
  assert.match(text, /produced 1 job$/m);
  assert.match(text, /outcomes: succeeded 1$/m);
  assert.match(text, /priority 1: 1 finished, 1 started, mean wait \d+\.\d\d s/);
});

Deno.test("producer main --seed-protocol --count N sends seed messages and exits", async () => {
  await using bus = new FakeBus({ answer: () => {} });
  const { code, out } = await run(["--url", bus.url, "--seed-protocol", "--count", "2", "-p", "0"]);
  assert.equal(code, 0);
  assert.match(out.join("\n"), /job #2 \(priority \d+, runtime \d+ s\) submitted/);
  for (let i = 0; i < 200 && bus.received.length < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(bus.received.map((m) => Object.keys(m).sort().join(",")), [
    "cmd,type",
    "cmd,payload",
    "cmd,payload",
  ]);
});

Deno.test("producer main --help prints the usage and returns 0", async () => {
  const { code, out, err } = await run(["--", "-h"]);
  assert.equal(code, 0);
  assert.deepEqual(out, [USAGE]);
  assert.deepEqual(err, []);
});

Deno.test("producer main rejects every bad flag: one line, the usage, exit 2", async () => {
  const bad: Array<[string[], RegExp]> = [
    [["--bogus"], /unknown option '--bogus'/],
    [["-x"], /unknown option '-x'/],
    [["-p", "-1"], /^producer: -p\/--period must be a number of seconds >= 0, got '-1'$/],
    [["-p", "-g"], /^producer: option '-p' needs a value$/],
    [["--period=-1"], /-p\/--period must be a number of seconds >= 0, got '-1'/],
    [["-p", "soon"], /--period must be/],
    [["-p", "0"], /^producer: -p 0 submits jobs without a pause, forever: add --count N/],
    [["-s", "-2"], /-s\/--sigma must be a number of seconds >= 0, got '-2'/],
    [["--count", "-3"], /^producer: --count must be an integer >= 1, got '-3'$/],
    [["--seed", "-.5"], /--seed must be an integer/],
    [["--sigma="], /--sigma must be/],
    [["--count", "0"], /--count must be an integer/],
    [["--count", "2.5"], /--count must be an integer/],
    [["--wait"], /--wait needs --count/],
    [["--wait", "--count", "2", "--seed-protocol"], /--seed-protocol/],
    [["--priority", "3-1"], /--priority must be LO-HI/],
    [["--priority", "0-11"], /--priority must be LO-HI/],
    [["--runtime", "0-5"], /--runtime must be LO-HI/],
    [["--runtime", "a-b"], /--runtime must be LO-HI/],
    [["--seed", "x"], /--seed must be an integer/],
    [["--seed", "4294967296"], /--seed must be an integer/],
    [["--url", "http://127.0.0.1:8101"], /--url must be a ws:\/\/ or wss:\/\/ URL, got/],
    [["--period"], /^producer: option '--period' needs a value$/],
    [["-s", "-2", "-g", "-p"], /^producer: option '--period' needs a value$/],
    [["--name", "a b"], /--name must be/],
    [["--name="], /--name must be/],
    [["extra"], /unexpected argument 'extra'/],
    [["--", "--count"], /--count/],
  ];
  for (const [args, message] of bad) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.deepEqual(out, [], args.join(" "));
    assert.equal(err.length, 2, args.join(" "));
    assert.match(err[0]!, /^producer: /);
    assert.match(err[0]!, message, args.join(" "));
    assert.ok(!err[0]!.includes("\n"), "one line");
    assert.equal(err[1], USAGE);
  }
});

/** A bus that accepts every job, runs it at once and ends it in `state`. */
function endingIn(state: string): (message: Message, reply: (message: object) => void) => void {
  return (message, reply) => {
    answerRegister(message, reply);
    if (message.cmd !== "job_request") return;
    const { id } = message;
    reply({ cmd: "accepted", id });
    for (const s of ["queued", "started", state]) {
      reply({ cmd: "event", id, state: s, at: Date.now(), priority: 1, scheduler: "n" });
    }
  };
}

Deno.test("producer main --wait exits 1 when a job failed or timed out, 0 when all succeeded", async () => {
  for (const [state, expected] of [["failed", 1], ["timed_out", 1], ["succeeded", 0]] as const) {
    await using bus = new FakeBus({ answer: endingIn(state) });
    const { code, out } = await run(["--url", bus.url, "--count", "2", "--wait", "-p", "0"]);
    assert.equal(code, expected, `${state}:\n${out.join("\n")}`);
    assert.match(out.join("\n"), new RegExp(`outcomes: ${state} 2$`, "m"));
  }
  assert.match(USAGE, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 /);
});

Deno.test("producer main --wait stopped by a signal with jobs unfinished exits 3", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") reply({ cmd: "accepted", id: message.id });
    },
  });
  const stop = new AbortController();
  const args = ["--url", bus.url, "--count", "2", "--wait", "-p", "0", "--name", "u"];
  const { code, out } = await run(args, stop.signal, (line) => {
    if (line.includes("that was the last one")) stop.abort();
  });
  assert.equal(code, 3, out.join("\n"));
  assert.match(out.join("\n"), /produced 2 jobs \(stopped\), 2 without an outcome$/m);
});

Deno.test("producer main --wait: a requeued job's wait counts its time back in the queue", async () => {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const { id } = message;
      const event = (state: string): void =>
        reply({ cmd: "event", id, state, at: Date.now(), priority: 4, scheduler: "n" });
      reply({ cmd: "accepted", id });
      for (const state of ["queued", "started", "evicted", "requeued"]) event(state);
      // Back in the queue for 300 ms, then it runs again and succeeds.
      const timer = setTimeout(() => {
        timers.delete(timer);
        event("started");
        event("succeeded");
      }, 300);
      timers.add(timer);
    },
  });
  const { code, out } = await run([
    "--url",
    bus.url,
    "--count",
    "1",
    "--wait",
    "--name",
    "r",
    "--priority",
    "4",
  ]);
  assert.equal(code, 0);
  assert.equal(timers.size, 0);
  const text = out.join("\n");
  const started = [...text.matchAll(/r-1 started on n after (\d+\.\d\d) s waiting/g)];
  assert.equal(started.length, 2, text);
  assert.ok(Number(started[1]![1]) >= 0.29, text);
  const wait = /priority 4: 1 finished, 1 started, mean wait (\d+\.\d\d) s/.exec(text);
  assert.ok(wait && Number(wait[1]) >= 0.29, text);
  assert.match(text, /\(wait: time not running, from submission to outcome; run: time running\)/);
});

Deno.test("producer CLI says how many it produced and exits 0 on SIGTERM", async () => {
  await using bus = new FakeBus();
  const script = new URL("../../producer/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "--allow-net", script, "--url", bus.url, "-p", "60"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("submitted")) {
      const { value, done } = await lines.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      text += value;
    }
  } finally {
    lines.releaseLock();
  }
  const status = await child.status;
  assert.equal(status.code, 0, text);
  assert.match(text, /produced 1 job \(stopped\)/);
});

Deno.test("producer main says when its jobs wait in the bus with no scheduler connected", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const { id } = message;
      reply({ cmd: "accepted", id, waiting: "no scheduler connected" });
      reply({ cmd: "event", id, state: "queued", at: Date.now(), priority: 1 });
      if (message.id !== "idle-2") return;
      for (const id of ["idle-1", "idle-2"]) { // then a scheduler comes and runs both
        for (const state of ["started", "succeeded"]) {
          reply({ cmd: "event", id, state, at: Date.now(), priority: 1, scheduler: "late" });
        }
      }
    },
  });
  const args = ["--url", bus.url, "--count", "2", "-p", "0", "--name", "idle", "--wait"];
  const { code, out } = await run(args);
  assert.equal(code, 0);
  const text = out.join("\n");
  assert.match(text, /idle-1 accepted.*; no scheduler connected \(1 job of ours waiting for one\)/);
  assert.match(
    text,
    /idle-2 accepted.*; no scheduler connected \(2 jobs of ours waiting for one\)/,
  );
});

const SECRET = "sched_cHJvZHVjZXI-token_0123";

/** A temporary file holding `text`, removed on dispose. */
async function tempFile(text: string): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/f`, text);
  return {
    path: `${dir}/f`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

tlsTest(
  "producer main runs a job over wss:// with --ca and the token of --token-file",
  async (certs) => {
    await using bus = new AuthBus({ token: SECRET, certs, answer: runningAtOnce });
    await using token = await tempFile(`${SECRET}\n`);
    const args = ["--url", bus.url, "--ca", certs.caFile, "--token-file", token.path];
    const { code, out, err } = await run([...args, "--count", "1", "--wait", "-p", "0"]);
    assert.equal(code, 0, err.join("\n"));
    assert.match(out.join("\n"), /outcomes: succeeded 1$/m);
    assert.ok(bus.authorizations.every((header) => header === `Bearer ${SECRET}`));
    assert.ok(!out.some((line) => line.includes(SECRET)));
  },
);

Deno.test("producer main says a refusal once, in one line, without -d, and never the token", async () => {
  await using bus = new AuthBus({ token: "sched_another_one" });
  await using token = await tempFile(SECRET);
  const controller = new AbortController();
  const running = run(
    ["--url", bus.url, "--token-file", token.path, "--count", "1", "-p", "0"],
    controller.signal,
  );
  await bus.upgrades(3); // refused three times
  controller.abort();
  const { code, out, err } = await running;
  assert.equal(code, 0);
  assert.deepEqual(err, []);
  const refusals = out.filter((line) => line.includes("refused"));
  assert.equal(refusals.length, 1, out.join("\n"));
  assert.match(
    refusals[0]!,
    /^\d\d:\d\d:\d\d\.\d{3} cannot connect to ws:.*: the server refused the upgrade: HTTP\/1\.1 401 Unauthorized: unknown token$/,
  );
  assert.ok(!out.some((line) => line.includes(SECRET)));
});
