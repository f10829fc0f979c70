import assert from "node:assert/strict";
import {
  formatJobDetails,
  formatJobTable,
  type JobsMainOptions,
  main,
  USAGE,
} from "../../producer/jobs.ts";
import { stamp } from "../../cli/stamp.ts";
import { answerRegister, FakeBus, type Message } from "../fixtures/fake_bus.ts";
import { DeadPort } from "../fixtures/dead_port.ts";
import { AuthBus } from "../fixtures/auth_bus.ts";
import { tlsTest } from "../fixtures/tls_certs.ts";
import type { JobDetails, JobSummary } from "../../bus/protocol.ts";

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function jobs(args: string[], options: JobsMainOptions = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    env: (name) => name === "USER" ? "ada" : undefined,
    ...options,
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
  });
  return { code, out, err };
}

const T0 = new Date(2026, 0, 1, 14, 3, 7, 42).getTime();

const WAITING: JobSummary = {
  id: "j-aaaaaaaaaaaa",
  name: "render",
  priority: 1,
  state: "queued",
  owner: "ada",
  submittedAt: T0,
  attempts: 0,
  waiting: "no scheduler with gpu=a100",
};
const RUNNING: JobSummary = {
  id: "j-bbbbbbbbbbbb",
  priority: 5,
  state: "started",
  owner: "bob",
  scheduler: "node-a",
  submittedAt: T0,
  startedAt: T0 + 250,
  attempts: 1,
};
const DETAILS: JobDetails = {
  ...RUNNING,
  state: "failed",
  endedAt: T0 + 1062,
  payload: {
    priority: 5,
    command: ["sh", "-c", "echo hi; exit 3"],
    cwd: "/tmp",
    env: { FOO: "1" },
    timeout: 60,
  },
  result: {
    exitCode: 3,
    signal: null,
    durationMs: 812,
    startedAt: T0 + 250,
    endedAt: T0 + 1062,
    scheduler: "node-a",
    attempts: 1,
    stdoutTail: "hi\n",
    stderrTail: "",
  },
  history: [
    { state: "queued", at: T0 },
    { state: "started", at: T0 + 250, scheduler: "node-a" },
    { state: "failed", at: T0 + 1062, scheduler: "node-a", reason: "exit code 3" },
  ],
};

/** A bus answering the queries as a test says; `cancel` of others' jobs is refused. */
function queryBus(): FakeBus {
  return new FakeBus({
    answer: (message: Message, reply) => {
      answerRegister(message, reply);
      switch (message.cmd) {
        case "list":
          return reply({ cmd: "jobs", jobs: [WAITING, RUNNING], total: 5 });
        case "show":
          return message.id === DETAILS.id
            ? reply({ cmd: "job_info", job: DETAILS })
            : reply({ cmd: "error", op: "show", id: message.id, reason: "unknown job" });
        case "cancel":
          return message.id === WAITING.id
            ? reply({ cmd: "ack", op: "cancel", id: message.id })
            : reply({ cmd: "error", op: "cancel", id: message.id, reason: "not your job" });
        case "set_priority":
          return reply({ cmd: "ack", op: "set_priority", id: message.id });
      }
    },
  });
}

Deno.test("jobs --help shows the commands, examples and exit codes", async () => {
  const { code, out } = await jobs(["--help"]);
  assert.equal(code, 0);
  assert.equal(out.join("\n"), USAGE);
  assert.match(USAGE, /list \| show ID \| cancel ID \| priority ID P \| wait ID/);
  assert.match(USAGE, /Exit codes:/);
  assert.match(USAGE, /deno task jobs -- cancel j-/);
});

Deno.test("jobs refuses bad command lines with one line and exit 2", async () => {
  const cases: Array<[string[], string]> = [
    [[], "jobs: say what: list, show ID, cancel ID, priority ID P or wait ID"],
    [["remove", "j-1"], "jobs: unknown command 'remove' (list, show, cancel, priority or wait)"],
    [["show"], "jobs: show takes ID, got none"],
    [["priority", "j-1"], "jobs: priority takes ID P, got 'j-1'"],
    [["list", "x"], "jobs: list takes no arguments, got 'x'"],
    [["priority", "j-1", "11"], "jobs: priority must be an integer 0..10, got '11'"],
    [
      ["list", "--state", "done"],
      "jobs: --state must be one of queued, started, evicted, requeued, suspended, resumed, succeeded, failed, timed_out, cancelled, delivered, got 'done'",
    ],
    [["list", "--limit", "0"], "jobs: --limit must be an integer 1..10000, got '0'"],
    [["show", "j-1", "--state", "queued"], "jobs: --state goes with list only"],
    [["cancel", "j-1", "--json"], "jobs: --json goes with list or show"],
  ];
  for (const [args, line] of cases) {
    const { code, err } = await jobs(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err[0], line);
  }
});

Deno.test("jobs list prints a table like squeue and sends the filters", async () => {
  await using bus = queryBus();
  const { code, out, err } = await jobs([
    "--",
    "list",
    "--state",
    "queued,started",
    "--name",
    "ren",
    "--owner",
    "ada",
    "--limit",
    "2",
    "--url",
    bus.url,
  ]);
  assert.equal(code, 0, err.join("\n"));
  assert.deepEqual(bus.received.find((m) => m.cmd === "list"), {
    cmd: "list",
    states: ["queued", "started"],
    name: "ren",
    owner: "ada",
    limit: 2,
  });
  assert.match(out[0]!, /^ID +NAME +PRIO +STATE +SCHEDULER +WAITED +RAN +WHY$/);
  assert.match(
    out[1]!,
    /^j-aaaaaaaaaaaa +render +1 +queued +- +\S+ +- +no scheduler with gpu=a100$/,
  );
  assert.match(out[2]!, /^j-bbbbbbbbbbbb +- +5 +started +node-a +0\.3s +\S+$/);
  assert.deepEqual(err, ["jobs: 2 of 5 jobs shown (--limit N for more)"]);
});

Deno.test("jobs list --json prints the bus's answer", async () => {
  await using bus = queryBus();
  const { code, out } = await jobs(["list", "--json", "--url", bus.url]);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out[0]!), { jobs: [WAITING, RUNNING], total: 5 });
});

Deno.test("formatJobTable: waited until the start (or now), ran from the start to the end (or now)", () => {
  const done = { ...RUNNING, endedAt: T0 + 125_250 };
  const lines = formatJobTable([done], T0 + 999_999);
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, / 0\.3s +2m05s$/);
  assert.doesNotMatch(lines[0]!, /WHY/);
});

Deno.test("jobs show prints the spec, the result, the tails and the history", async () => {
  await using bus = queryBus();
  const { code, out } = await jobs(["show", DETAILS.id, "--url", bus.url]);
  assert.equal(code, 0);
  assert.deepEqual(out, formatJobDetails(DETAILS));
  const text = out.join("\n");
  assert.match(text, /^state +failed$/m);
  assert.match(text, /^command +sh -c 'echo hi; exit 3'$/m);
  assert.match(text, /^env +FOO=1$/m);
  assert.match(text, /^timeout +60 s$/m);
  assert.match(text, new RegExp(`^submitted +${stamp(T0)}$`, "m"));
  assert.match(text, new RegExp(`^started +${stamp(T0 + 250)} \\(waited 0\\.250 s\\)$`, "m"));
  assert.match(text, /^ended +\S+ \(ran 0\.812 s\)$/m);
  assert.match(text, /^result +failed: exit code 3 \(on node-a, 0\.812 s\)$/m);
  assert.match(text, /^stdout:\n {2}hi$/m);
  assert.match(text, new RegExp(`^ {2}${stamp(T0 + 1062)} +failed +node-a +exit code 3$`, "m"));
});

Deno.test("jobs show --json prints the job; an unknown job exits 1 with the bus's reason", async () => {
  await using bus = queryBus();
  const shown = await jobs(["show", DETAILS.id, "--json", "--url", bus.url]);
  assert.deepEqual(JSON.parse(shown.out[0]!), DETAILS);
  const { code, err } = await jobs(["show", "j-nope", "--url", bus.url]);
  assert.equal(code, 1);
  assert.deepEqual(err, ["jobs: j-nope: unknown job"]);
});

Deno.test("jobs cancel and priority: acknowledged exit 0, refused exit 1 with the reason", async () => {
  await using bus = queryBus();
  const cancelled = await jobs(["cancel", WAITING.id, "--url", bus.url]);
  assert.equal(cancelled.code, 0);
  assert.deepEqual(cancelled.out, [`${WAITING.id}: cancel sent`]);
  const refused = await jobs(["cancel", RUNNING.id, "--url", bus.url]);
  assert.equal(refused.code, 1);
  assert.deepEqual(refused.err, [`jobs: ${RUNNING.id}: not your job`]);
  const moved = await jobs(["priority", WAITING.id, "0", "--url", bus.url]);
  assert.equal(moved.code, 0);
  assert.deepEqual(bus.received.at(-1), { cmd: "set_priority", id: WAITING.id, priority: 0 });
  const registers = bus.received.filter((m) => m.cmd === "register").map((m) => m.name);
  assert.deepEqual(new Set(registers), new Set(["ada"]));
});

Deno.test("jobs wait prints the tails and exits with the job's code", async () => {
  await using bus = queryBus();
  const { code, out, err } = await jobs(["wait", DETAILS.id, "--url", bus.url]);
  assert.equal(code, 3);
  assert.deepEqual(out, ["hi"]);
  assert.equal(
    err.at(-1),
    "jobs: j-bbbbbbbbbbbb failed: exit code 3 (on node-a, 0.812 s); jobs exits 3",
  );
});

Deno.test("jobs wait exits 130 on Ctrl-C and says how to cancel, with --url and --owner", async () => {
  const controller = new AbortController();
  await using bus = new FakeBus({
    answer: (message: Message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "show") return;
      reply({ cmd: "job_info", job: { ...RUNNING, payload: { priority: 5 }, history: [] } });
      controller.abort();
    },
  });
  const args = ["wait", RUNNING.id, "--url", bus.url, "--owner", "bob"];
  const { code, err } = await jobs(args, { signal: controller.signal });
  assert.equal(code, 130);
  assert.deepEqual(err, [
    `jobs: stopped waiting: ${RUNNING.id} keeps running (cancel it with: deno task jobs -- ` +
    `cancel ${RUNNING.id} --url ${bus.url} --owner bob)`,
  ]);
});

Deno.test("jobs wait says which exit code is its own", async () => {
  await using bus = new FakeBus({
    answer: (message: Message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "show") return;
      const result = { ...DETAILS.result, exitCode: null, signal: "SIGTERM" };
      const reason = "ran past its timeout of 60 s";
      reply({ cmd: "job_info", job: { ...DETAILS, state: "timed_out", reason, result } });
    },
  });
  const { code, err } = await jobs(["wait", DETAILS.id, "--url", bus.url]);
  assert.equal(code, 124);
  assert.equal(
    err.at(-1),
    `jobs: ${DETAILS.id} timed out after 60 s: killed by SIGTERM (on node-a, 0.812 s); jobs exits 124`,
  );
});

Deno.test("jobs exits 4 when the bus is unreachable", async () => {
  await using dead = new DeadPort();
  const { code, err } = await jobs(["list", "--url", dead.url, "--connect-timeout", "0.1"]);
  assert.equal(code, 4);
  assert.deepEqual(err, [`jobs: cannot reach the bus at ${dead.url} within 0.1 s`]);
});

Deno.test("jobs says at once why the bus refused its registration (e.g. a token of another role)", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      if (message.cmd !== "register") return;
      const reason = "token watcher (monitor) may not register as producer";
      reply({ cmd: "error", op: "register", reason });
    },
  });
  const { code, err } = await jobs(["list", "--url", bus.url, "--connect-timeout", "30"]);
  assert.equal(code, 4);
  assert.deepEqual(err, [
    "jobs: the bus refused the registration: token watcher (monitor) may not register as producer",
  ]);
});

const SECRET = "sched_am9icw-token_99";

tlsTest(
  "jobs list over wss:// with --ca and $SCHED_TOKEN; the certificate error and a 401 in one line",
  async (certs) => {
    const answer = (message: Message, reply: (message: object) => void): void => {
      answerRegister(message, reply);
      if (message.cmd === "list") reply({ cmd: "jobs", jobs: [WAITING], total: 1 });
    };
    await using bus = new AuthBus({ token: SECRET, certs, answer });
    const env = (name: string): string | undefined =>
      name === "SCHED_TOKEN" ? SECRET : name === "USER" ? "ada" : undefined;
    const listed = await jobs(["list", "--url", bus.url, "--ca", certs.caFile, "--json"], { env });
    assert.equal(listed.code, 0, listed.err.join("\n"));
    assert.deepEqual(JSON.parse(listed.out[0]!), { jobs: [WAITING], total: 1 });
    assert.deepEqual(bus.authorizations, [`Bearer ${SECRET}`]);
    const untrusted = await jobs(["list", "--url", bus.url, "--connect-timeout", "30"], { env });
    assert.equal(untrusted.code, 4);
    assert.equal(untrusted.err.length, 1);
    assert.match(
      untrusted.err[0]!,
      /^jobs: cannot connect to wss:.*: TLS handshake .*UnknownIssuer$/,
    );
    const missing = await jobs(["list", "--url", bus.url, "--ca", certs.caFile]);
    assert.equal(missing.code, 4);
    assert.match(
      missing.err.join("\n"),
      /^jobs: cannot connect .* 401 Unauthorized: missing token$/,
    );
    assert.ok(![...listed.err, ...untrusted.err].some((line) => line.includes(SECRET)));
  },
);
