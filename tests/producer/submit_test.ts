import assert from "node:assert/strict";
import { main, type SubmitMainOptions, USAGE } from "../../producer/submit.ts";
import { jobsCommand } from "../../producer/job_exit.ts";
import { answerRegister, FakeBus, type Message } from "../fixtures/fake_bus.ts";
import { DeadPort } from "../fixtures/dead_port.ts";
import { AuthBus } from "../fixtures/auth_bus.ts";
import { tlsTest } from "../fixtures/tls_certs.ts";

interface Run {
  code: number;
  out: string[];
  err: string[];
}

/** Runs `submit` in-process with captured output; `onOut` sees each stdout line. */
async function submit(
  args: string[],
  options: SubmitMainOptions & { onOut?: (line: string) => void } = {},
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    env: () => undefined,
    cwd: "/home/ada",
    progressMs: 0,
    ...options,
    stdout: (line) => {
      out.push(line);
      options.onOut?.(line);
    },
    stderr: (line) => err.push(line),
  });
  return { code, out, err };
}

const BASE_RESULT = {
  exitCode: 0,
  signal: null,
  durationMs: 12,
  startedAt: 1,
  endedAt: 13,
  scheduler: "node-a",
  attempts: 1,
};

/** A bus that accepts every job, starts it, and ends it as `end(message)` says. */
function endingBus(end: (message: Message) => Record<string, unknown>): FakeBus {
  return new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const { id } = message;
      reply({ cmd: "accepted", id });
      reply({ cmd: "event", id, state: "started", at: 1, priority: 5, scheduler: "node-a" });
      reply({
        cmd: "event",
        id,
        at: 2,
        priority: 5,
        scheduler: "node-a",
        final: true,
        ...end(message),
      });
    },
  });
}

const jobRequests = (bus: FakeBus): Message[] =>
  bus.received.filter((m) => m.cmd === "job_request");

Deno.test("submit --help shows the flags, examples and exit codes", async () => {
  const { code, out } = await submit(["--help"]);
  assert.equal(code, 0);
  assert.equal(out.join("\n"), USAGE);
  for (const text of ["--follow", "--file FILE", "Exit codes:", "124", "125", "126", "130"]) {
    assert.ok(USAGE.includes(text), text);
  }
  assert.match(USAGE, /Examples:\n {2}deno task submit -- -- echo hello/);
});

Deno.test("submit refuses bad command lines with one line and exit 2, before connecting", async () => {
  const cases: Array<[string[], string]> = [
    [["--", "-p", "11", "--", "true"], "submit: -p/--priority must be an integer 0..10, got 11"],
    [["-p", "x", "--", "true"], "submit: -p/--priority must be a number, got 'x'"],
    [
      ["--timeout", "-1", "--", "true"],
      "submit: --timeout must be a number of seconds > 0, got -1",
    ],
    [["--retries", "1.5", "--", "true"], "submit: --retries must be an integer 0..100, got 1.5"],
    [["--env", "X", "--", "true"], "submit: --env must be NAME=VALUE, got 'X'"],
    [
      ["--env", "1X=2", "--", "true"],
      "submit: --env: name '1X' must be letters, digits and '_', not starting with a digit",
    ],
    [
      ["--require", "gpu type=a", "--", "true"],
      "submit: --require: name 'gpu type' must be 1..64 letters, digits, '_', '.' or '-'",
    ],
    [
      ["--", "-p", "1"],
      "submit: no command: put it after --, as in: deno task submit -- -p 1 -- sh -c 'echo hi'",
    ],
    [["--", "--", ""], "submit: command[0] must not be empty"],
    [
      ["--wait", "--follow", "--", "true"],
      "submit: --wait and --follow do not go together (--follow waits as well)",
    ],
    [["--file", "x.jsonl", "--", "true"], "submit: --file takes no command, got 'true'"],
    [
      ["--url", "http://x", "--", "true"],
      "submit: --url must be a ws:// or wss:// URL, got 'http://x'",
    ],
    [["--nope", "--", "true"], "submit: unknown option '--nope'"],
    [
      ["--grace", "4000", "--", "true"],
      "submit: --grace must be a number of seconds >= 0 and <= 3600, got 4000",
    ],
    [["--name", "", "--", "true"], "submit: --name must be 1..128 printable characters, got ''"],
    [["--cwd", "/a\0b", "--", "true"], 'submit: --cwd must be an absolute path, got "/a\\u0000b"'], // escaped: JSON's quotes
    [
      ["--require", `gpu=${"x".repeat(129)}`, "--", "true"],
      `submit: --require gpu=…: the value must be a string of at most 128 printable characters, got '${
        "x".repeat(40)
      }…'`,
    ],
    [
      ["--env", "1X=2", "--file", "jobs.jsonl"],
      "submit: --env: name '1X' must be letters, digits and '_', not starting with a digit",
    ],
  ];
  for (const [args, line] of cases) {
    const { code, err, out } = await submit(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err[0], line);
    assert.deepEqual(out, []);
  }
});

Deno.test("submit says to put the command after a second -- when its option looks like ours", async () => {
  const hint = "put the command after a second --, e.g. deno task submit -- -p 3 -- sh -c '…'";
  const cases: Array<[string[], string]> = [
    [["--", "sh", "-c", "echo hi"], `submit: unknown option '-c': ${hint}`],
    [["--", "-p", "3", "ls", "--color=auto", "/"], `submit: unknown option '--color': ${hint}`],
    [["--", "-p", "x", "sh", "-c", "echo hi"], `submit: unknown option '-c': ${hint}`],
    [["--", "--nope", "sh", "-c", "x"], "submit: unknown option '--nope'"], // before the command
  ];
  for (const [args, line] of cases) {
    const { code, err, out } = await submit(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err[0], line);
    assert.equal(err[1], USAGE);
    assert.deepEqual(out, []);
  }
  const help = await submit(["--", "--help", "sh", "-c", "x"]);
  assert.equal(help.code, 0);
  assert.deepEqual(help.out, [USAGE]);
});

Deno.test("submit sends the payload of the flags, prints the id and exits 0", async () => {
  await using bus = endingBus(() => ({ state: "succeeded" }));
  const { code, out, err } = await submit([
    "--",
    "-p",
    "1",
    "--name",
    "render",
    "--timeout",
    "60",
    "--grace",
    "5",
    "--cwd",
    "out",
    "--env",
    "FOO=1=2",
    "--require",
    "gpu=a100",
    "--retries",
    "2",
    "--url",
    bus.url,
    "--",
    "sh",
    "-c",
    "echo hi; sleep 1",
  ]);
  assert.equal(code, 0, err.join("\n"));
  assert.equal(out.length, 1);
  assert.match(out[0]!, /^j-[0-9a-f]{12}$/);
  assert.deepEqual(jobRequests(bus), [{
    cmd: "job_request",
    id: out[0],
    payload: {
      priority: 1,
      command: ["sh", "-c", "echo hi; sleep 1"],
      name: "render",
      timeout: 60,
      grace: 5,
      cwd: "/home/ada/out",
      env: { FOO: "1=2" },
      requires: { gpu: "a100" },
      retries: 2,
    },
  }]);
});

Deno.test("submit registers as --owner, else $SCHED_OWNER, else $USER, else user", async () => {
  await using bus = endingBus(() => ({ state: "succeeded" }));
  const names: unknown[] = [];
  const vars = [{ SCHED_OWNER: "sched", USER: "unix" }, { USER: "unix" }, {}];
  await submit(["--url", bus.url, "--owner", "given", "--", "true"], { env: () => "env" });
  for (const env of vars) {
    await submit(["--url", bus.url, "--", "true"], {
      env: (name) => (env as Record<string, string>)[name],
    });
  }
  for (const m of bus.received) if (m.cmd === "register") names.push(m.name);
  assert.deepEqual(names, ["given", "sched", "unix", "user"]);
});

Deno.test("submit --wait prints the tails and exits with the job's code", async () => {
  const cases: Array<[Record<string, unknown>, number, RegExp | undefined]> = [
    [
      {
        state: "succeeded",
        result: { ...BASE_RESULT, stdoutTail: "out 1\nout 2\n", stderrTail: "warn\n" },
      },
      0,
      undefined,
    ],
    [
      { state: "failed", result: { ...BASE_RESULT, exitCode: 3 } },
      3,
      /failed: exit code 3 \(on node-a, 0\.012 s\); submit exits 3$/,
    ],
    [
      { state: "failed", result: { ...BASE_RESULT, exitCode: null, signal: "SIGKILL" } },
      137,
      /failed: killed by SIGKILL \(on node-a, 0\.012 s\); submit exits 137$/,
    ],
    [
      {
        state: "timed_out",
        reason: "ran past its timeout of 0.5 s",
        result: { ...BASE_RESULT, exitCode: null, signal: "SIGTERM" },
      },
      124,
      /^submit: j-\w+ timed out after 0\.5 s: killed by SIGTERM \(on node-a, 0\.012 s\); submit exits 124$/,
    ],
    [
      { state: "timed_out", reason: "too slow" }, // another reason: said as it is
      124,
      /^submit: j-\w+ timed out: too slow \(on node-a\); submit exits 124$/,
    ],
    [
      {
        state: "failed",
        result: {
          ...BASE_RESULT,
          exitCode: null,
          startedAt: null,
          startError: "no such executable: nope",
        },
      },
      125,
      /failed: could not start: no such executable: nope \(on node-a\); submit exits 125$/,
    ],
    [
      { state: "cancelled", reason: "cancelled by its owner" },
      126,
      /^submit: j-\w+ cancelled by its owner \(on node-a\); submit exits 126$/,
    ],
    [
      { state: "evicted", reason: "preempted" },
      126,
      /evicted: preempted \(on node-a\); submit exits 126$/,
    ],
  ];
  for (const [end, expected, line] of cases) {
    await using bus = endingBus(() => end);
    const { code, out, err } = await submit(["--wait", "--url", bus.url, "--", "true"]);
    assert.equal(code, expected, JSON.stringify(end));
    if (line) assert.match(err.at(-1)!, line);
    if (expected === 0) {
      assert.deepEqual(out.slice(1), ["out 1", "out 2"]);
      assert.deepEqual(err, ["warn"]);
    }
  }
});

Deno.test("submit says when a tail is only the end of the output", async () => {
  await using bus = endingBus(() => ({
    state: "succeeded",
    result: { ...BASE_RESULT, stdoutTail: "end", stdoutTruncated: true, stdoutFile: "/o/j.out" },
  }));
  const { code, out, err } = await submit(["--wait", "--url", bus.url, "--", "true"]);
  assert.equal(code, 0);
  assert.equal(out[1], "end");
  assert.match(err[0]!, /only the end of its stdout follows; all of it in \/o\/j\.out/);
});

Deno.test("submit exits 3 when the bus rejects the job", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") {
        reply({ cmd: "rejected", id: message.id, reason: "no scheduler allows command x" });
      }
    },
  });
  const { code, out, err } = await submit(["--wait", "--url", bus.url, "--", "x"]);
  assert.equal(code, 3);
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["submit: rejected: no scheduler allows command x"]);
});

/** A bus that accepts every job as waiting, for the reason `waiting(payload)` gives. */
function waitingBus(waiting: (payload: Record<string, unknown>) => string | null): FakeBus {
  return new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const reason = waiting(message.payload as Record<string, unknown>);
      reply({ cmd: "accepted", id: message.id, ...(reason === null ? {} : { waiting: reason }) });
    },
  });
}

Deno.test("submit says what scheduler to start when its job waits with none to run it", async () => {
  const cases: Array<[string[], string, string | undefined]> = [
    [
      ["--", "sh", "-c", "echo hi"],
      "no scheduler allows command sh",
      "submit: start a scheduler with --allow-command sh (or '*')",
    ],
    [
      ["--require", "gpu=a100", "--require", "os=linux", "--", "./run it.sh"],
      "no scheduler with gpu=a100, os=linux",
      "submit: start a scheduler with --label gpu=a100 --label os=linux",
    ],
    [
      ["--require", "gpu=a 1", "--", "ffmpeg"],
      "no scheduler with gpu=a 1 allows command ffmpeg",
      "submit: start a scheduler with --label 'gpu=a 1' --allow-command ffmpeg (or '*')",
    ],
    [
      ["--", "./run it.sh"],
      "no scheduler connected",
      "submit: start a scheduler with --allow-command './run it.sh' (or '*')",
    ],
    [["--", "true"], "something new", undefined],
  ];
  for (const [args, waiting, hint] of cases) {
    await using bus = waitingBus(() => waiting);
    const { code, out, err } = await submit(["--url", bus.url, ...args]);
    assert.equal(code, 0);
    assert.deepEqual(err, [`submit: ${out[0]} waits: ${waiting}`, ...(hint ? [hint] : [])]);
  }
  await using bus = waitingBus(() => null); // waits its turn: nothing to say
  const { err } = await submit(["--url", bus.url, "--", "true"]);
  assert.deepEqual(err, []);
});

Deno.test("submit --file says once what scheduler to start for the jobs that wait alike", async () => {
  await using bus = waitingBus((payload) =>
    `no scheduler allows command ${(payload.command as string[])[0]}`
  );
  const dir = await Deno.makeTempDir();
  try {
    const lines = ['{"command":["a"]}', '{"command":["b"]}', '{"command":["a","x"]}'];
    await Deno.writeTextFile(`${dir}/j.jsonl`, lines.join("\n"));
    const { code, out, err } = await submit(["--file", "j.jsonl", "--url", bus.url], { cwd: dir });
    assert.equal(code, 0);
    assert.deepEqual(err, [
      `submit: ${out[0]} waits: no scheduler allows command a`,
      "submit: start a scheduler with --allow-command a (or '*')",
      `submit: ${out[1]} waits: no scheduler allows command b`,
      "submit: start a scheduler with --allow-command b (or '*')",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit exits 4 when the bus is unreachable within --connect-timeout", async () => {
  await using dead = new DeadPort();
  const args = ["--url", dead.url, "--connect-timeout", "0.2", "--", "true"];
  const { code, err } = await submit(args);
  assert.equal(code, 4);
  assert.deepEqual(err, [`submit: cannot reach the bus at ${dead.url} within 0.2 s`]);
});

Deno.test("submit --wait exits 130 on Ctrl-C and says how to cancel the job, which runs on", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") reply({ cmd: "accepted", id: message.id });
    },
  });
  // the hint repeats --url (not the default here) and --owner when given, quoted for a shell
  for (const owner of [[], ["--owner", "ada l"]]) {
    const controller = new AbortController();
    const args = ["--wait", "--url", bus.url, ...owner, "--", "sleep", "9"];
    const { code, out, err } = await submit(args, {
      signal: controller.signal,
      onOut: () => controller.abort(),
    });
    assert.equal(code, 130);
    const flags = `--url ${bus.url}${owner.length ? " --owner 'ada l'" : ""}`;
    assert.equal(
      err[0],
      `submit: stopped waiting: ${out[0]} keeps running (cancel it with: deno task jobs -- cancel ${
        out[0]
      } ${flags})`,
    );
  }
  assert.ok(!bus.received.some((m) => m.cmd === "cancel"));
});

Deno.test("jobsCommand leaves out the default --url", () => {
  assert.equal(
    jobsCommand("cancel j-1", { url: "ws://127.0.0.1:8101" }),
    "deno task jobs -- cancel j-1",
  );
  assert.equal(
    jobsCommand("list", { url: "ws://h:1", owner: "bob" }),
    "deno task jobs -- list --url ws://h:1 --owner bob",
  );
});

Deno.test("submit --file --wait on Ctrl-C says how to list and cancel, with --url and --owner", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd === "job_request") reply({ cmd: "accepted", id: message.id });
    },
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/j.jsonl`, '{"command":["sleep","9"]}\n');
    const controller = new AbortController();
    const args = ["--file", "j.jsonl", "--wait", "--url", bus.url, "--owner", "bob"];
    const { code, err } = await submit(args, {
      cwd: dir,
      signal: controller.signal,
      onOut: () => controller.abort(),
    });
    assert.equal(code, 130);
    const flags = `--url ${bus.url} --owner bob`;
    assert.equal(
      err.at(-1),
      `submit: stopped waiting: 1 job keeps running (deno task jobs -- list ${flags}; ` +
        `deno task jobs -- cancel ID ${flags})`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit --follow streams the output live, then exits with the job's code", async () => {
  await using bus = new FakeBus({
    answer: (message, reply) => {
      answerRegister(message, reply);
      if (message.cmd !== "job_request") return;
      const { id } = message;
      reply({ cmd: "accepted", id });
      reply({ cmd: "output", id, stream: "stdout", data: "line 1\nline" });
      reply({ cmd: "output", id, stream: "stderr", data: "oops\n" });
      reply({ cmd: "output", id, stream: "stdout", data: " 2\ntail", dropped: 100 });
      reply({
        cmd: "event",
        id,
        state: "failed",
        at: 2,
        priority: 5,
        final: true,
        result: { ...BASE_RESULT, exitCode: 3, stdoutTail: "line 1\nline 2\ntail" },
      });
    },
  });
  const { code, out, err } = await submit(["--follow", "--url", bus.url, "--", "sh", "-c", "x"]);
  assert.equal(code, 3);
  assert.deepEqual(out.slice(1), ["line 1", "line 2", "tail"]); // streamed, tails not again
  assert.deepEqual(err.slice(0, 2), [
    "oops",
    `submit: ${out[0]}: 100 bytes of its stdout dropped (rate limit)`,
  ]);
  assert.equal((jobRequests(bus)[0]?.payload as { follow?: boolean }).follow, true);
});

Deno.test("submit --file reports every bad line by number and sends nothing", async () => {
  await using bus = endingBus(() => ({ state: "succeeded" }));
  const dir = await Deno.makeTempDir();
  try {
    const lines = [
      '{"command":["true"]}',
      "not json",
      "",
      '{"command":[""],"priority":1}',
      '["true"]',
      '{"command":["true"],"priority":99}',
    ];
    await Deno.writeTextFile(`${dir}/jobs.jsonl`, lines.join("\n"));
    const { code, out, err } = await submit(["--file", "jobs.jsonl", "--url", bus.url], {
      cwd: dir,
    });
    assert.equal(code, 2);
    assert.deepEqual(out, []);
    assert.match(err[0]!, /^submit: jobs\.jsonl:2: not JSON/);
    assert.deepEqual(err.slice(1), [
      "submit: jobs.jsonl:4: command[0] must not be empty",
      "submit: jobs.jsonl:5: must be a JSON object (a job's payload)",
      "submit: jobs.jsonl:6: priority must be an integer 0..10, got 99",
      "submit: nothing submitted",
    ]);
    assert.deepEqual(bus.received, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit --file --wait submits every line, shows progress, exits 1 if one failed", async () => {
  await using bus = endingBus((message) => {
    const command = (message.payload as { command: string[] }).command;
    return command[0] === "false"
      ? { state: "failed", result: { ...BASE_RESULT, exitCode: 1 } }
      : { state: "succeeded" };
  });
  const dir = await Deno.makeTempDir();
  try {
    const lines = [
      '{"command":["true"]}',
      '{"command":["false"],"priority":0}',
      '{"command":["true"],"cwd":"sub"}',
    ];
    await Deno.writeTextFile(`${dir}/jobs.jsonl`, lines.join("\n") + "\n");
    const { code, out, err } = await submit(
      ["-p", "2", "--file", `${dir}/jobs.jsonl`, "--wait", "--url", bus.url],
      { cwd: dir },
    );
    assert.equal(code, 1);
    assert.equal(out.length, 3);
    const sent = jobRequests(bus);
    assert.deepEqual(sent.map((m) => m.id), out);
    assert.deepEqual(sent.map((m) => (m.payload as { priority: number }).priority), [2, 0, 2]);
    assert.equal((sent[2]?.payload as { cwd?: string }).cwd, `${dir}/sub`);
    assert.ok(err.includes("submit: 3 of 3 done (succeeded 2, failed 1)"), err.join("\n"));
    assert.match(err.at(-1)!, new RegExp(`^submit: ${out[1]} failed: exit code 1`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit --file --wait counts the outcomes in words (timed out)", async () => {
  await using bus = endingBus(() => ({
    state: "timed_out",
    reason: "ran past its timeout of 1 s",
  }));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/j.jsonl`, '{"command":["sleep","9"]}\n');
    const { code, out, err } = await submit(["--file", "j.jsonl", "--wait", "--url", bus.url], {
      cwd: dir,
    });
    assert.equal(code, 1);
    assert.deepEqual(err.slice(-2), [
      "submit: 1 of 1 done (timed out 1)",
      `submit: ${out[0]} timed out after 1 s (on node-a)`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit --file without --wait exits 0 once all are accepted", async () => {
  await using bus = endingBus(() => ({ state: "succeeded" }));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/j.jsonl`, '{"command":["true"]}\n{"command":["true"]}\n');
    const { code, out } = await submit(["--file", "j.jsonl", "--url", bus.url], { cwd: dir });
    assert.equal(code, 0);
    assert.equal(out.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("submit exits 4 when the bus never answers the registration (a seed bus)", async () => {
  await using bus = new FakeBus({ answer: () => {} });
  const { code, err } = await submit(["--url", bus.url, "--connect-timeout", "0.2", "--", "true"]);
  assert.equal(code, 4);
  assert.match(err[0]!, /^submit: the bus at ws:\S+ did not answer within 0\.2 s \(the seed's bus/);
});

/** Answers like {@linkcode endingBus} with a success. */
function answerSuccess(message: Message, reply: (message: object) => void): void {
  answerRegister(message, reply);
  if (message.cmd !== "job_request") return;
  reply({ cmd: "accepted", id: message.id });
}

const SECRET = "sched_Zm9vYmFyYmF6-_0123456789";

Deno.test("submit presents $SCHED_TOKEN, or --token-file's first line, as Authorization: Bearer", async () => {
  await using bus = new AuthBus({ token: SECRET, answer: answerSuccess });
  const env = (name: string): string | undefined => name === "SCHED_TOKEN" ? SECRET : undefined;
  const fromEnv = await submit(["--url", bus.url, "--", "true"], { env });
  assert.equal(fromEnv.code, 0, fromEnv.err.join("\n"));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, `${SECRET}\n`);
    const fromFile = await submit(["--url", bus.url, "--token-file", `${dir}/token`, "--", "true"]);
    assert.equal(fromFile.code, 0, fromFile.err.join("\n"));
    for (const run of [fromEnv, fromFile]) {
      assert.ok(![...run.out, ...run.err].some((line) => line.includes(SECRET)));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(bus.authorizations, [`Bearer ${SECRET}`, `Bearer ${SECRET}`]);
  const none = await submit(["--url", bus.url, "--connect-timeout", "5", "--", "true"]);
  assert.equal(bus.authorizations.at(-1), null); // no token, no header
  assert.equal(none.code, 4);
});

Deno.test("submit says the bus's 401 in one line and exits 4 at once, never showing the token", async () => {
  await using bus = new AuthBus({ token: "sched_the_right_one" });
  const wrong = await submit(["--url", bus.url, "--connect-timeout", "30", "--", "true"], {
    env: (name) => name === "SCHED_TOKEN" ? SECRET : undefined,
  });
  assert.equal(wrong.code, 4);
  assert.deepEqual(wrong.err, [
    `submit: cannot connect to ${bus.url}: the server refused the upgrade: ` +
    "HTTP/1.1 401 Unauthorized: unknown token",
  ]);
  const missing = await submit(["--url", bus.url, "--connect-timeout", "30", "--", "true"]);
  assert.equal(missing.code, 4);
  assert.match(
    missing.err.join("\n"),
    /^submit: cannot connect .* 401 Unauthorized: missing token$/,
  );
  assert.ok(![...wrong.out, ...wrong.err].some((line) => line.includes(SECRET)));
});

Deno.test("submit refuses an unreadable or empty --token-file, and --ca with ws://, in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty`, "\n");
    const cases: [string[], string][] = [
      [
        ["--token-file", `${dir}/none`],
        `submit: --token-file: cannot read '${dir}/none': no such file`,
      ],
      [
        ["--token-file", `${dir}/empty`],
        `submit: --token-file '${dir}/empty': its first line is empty`,
      ],
      [
        ["--ca", `${dir}/empty`],
        "submit: --ca is for a wss:// bus, but the URL is 'ws://127.0.0.1:8101'",
      ],
    ];
    for (const [flags, line] of cases) {
      const { code, err } = await submit([...flags, "--", "true"]);
      assert.equal(code, 2);
      assert.equal(err[0], line);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

tlsTest(
  "submit reaches a wss:// bus with --ca, and says the certificate error without it",
  async (certs) => {
    await using bus = new AuthBus({ token: SECRET, certs, answer: answerSuccess });
    const env = (name: string): string | undefined => name === "SCHED_TOKEN" ? SECRET : undefined;
    const trusted = await submit(["--url", bus.url, "--ca", certs.caFile, "--", "true"], { env });
    assert.equal(trusted.code, 0, trusted.err.join("\n"));
    assert.match(trusted.out[0] ?? "", /^j-[0-9a-f]{12}$/);
    const untrusted = await submit(["--url", bus.url, "--connect-timeout", "30", "--", "true"], {
      env,
    });
    assert.equal(untrusted.code, 4);
    assert.equal(untrusted.err.length, 1, untrusted.err.join("\n"));
    assert.match(
      untrusted.err[0]!,
      /^submit: cannot connect to wss:\/\/127\.0\.0\.1:\d+: TLS handshake with 127\.0\.0\.1:\d+ failed: invalid peer certificate: UnknownIssuer$/,
    );
  },
);

Deno.test("jobsCommand repeats --token-file and --ca as given (never a token)", () => {
  assert.equal(
    jobsCommand("cancel j-1", {
      url: "wss://h:1",
      credentialFlags: { "token-file": "/home/ada/.sched token", ca: "ca.pem" },
    }),
    "deno task jobs -- cancel j-1 --url wss://h:1 --token-file '/home/ada/.sched token' --ca ca.pem",
  );
});
