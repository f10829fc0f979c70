import assert from "node:assert/strict";
import { cliRunner } from "../fixtures/cli_run.ts";
import { BusServer } from "../../bus/server.ts";
import { main, USAGE } from "../../scheduler/main.ts";
import { type Message, WsPeer } from "../fixtures/raw_ws.ts";
import { AuthBus } from "../fixtures/auth_bus.ts";
import { tlsTest } from "../fixtures/tls_certs.ts";

/** Runs the CLI's `main` with captured output. */
const run = cliRunner(main);

/** A bus on a free port, a v2 producer on it, and a monitor. */
async function busWithPeers(): Promise<
  { bus: BusServer; url: string; producer: WsPeer; monitor: WsPeer }
> {
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const url = `ws://127.0.0.1:${bus.listen().port}`;
  const producer = await WsPeer.open(url);
  await producer.register({ type: "producer", protocol: 2, name: "t" });
  const monitor = await WsPeer.open(url);
  await monitor.register({ type: "monitor", protocol: 2 });
  return { bus, url, producer, monitor };
}

const job = (id: string, priority: number, runtime: number): Message => ({
  cmd: "job_request",
  id,
  payload: { priority, runtime },
});
/** A file for the test's lifetime, with the given mode. */
class TempFile {
  readonly path = Deno.makeTempFileSync({ prefix: "scheduler_main_test_" });
  constructor(mode: number) {
    Deno.chmodSync(this.path, mode);
  }
  [Symbol.dispose](): void {
    Deno.removeSync(this.path);
  }
}

const final = (id: string) => (m: Message): boolean =>
  m.id === id && ["succeeded", "failed", "timed_out", "cancelled"].includes(String(m.state));

Deno.test("scheduler main --help prints the usage and returns 0, also after the task's --", async () => {
  for (const args of [["--help"], ["--", "-h"]]) {
    const { code, out, err } = await run(args);
    assert.equal(code, 0);
    assert.deepEqual(out, [USAGE]);
    assert.deepEqual(err, []);
  }
  assert.match(USAGE, /-s SIZE[\s\S]*-t TIMEOUT[\s\S]*--exec PATH/);
});

Deno.test("scheduler main's usage fits in 100 columns", () => {
  const long = USAGE.split("\n").filter((line) => line.length > 100);
  assert.deepEqual(long, []);
});

Deno.test("scheduler main: a bad flag prints one line and the usage, returns 2", async () => {
  using notExecutable = new TempFile(0o644);
  const cases: [string[], RegExp][] = [
    [["-s", "0"], /^scheduler: -s must be an integer >= 1, got '0'$/],
    [["-s", "2.5"], /^scheduler: -s must be an integer >= 1, got '2\.5'$/],
    [["-s", "-2"], /^scheduler: -s must be an integer >= 1, got '-2'$/],
    [["-t", "soon"], /^scheduler: -t must be a number of seconds > 0, got 'soon'$/],
    [["-t", "-1"], /^scheduler: -t must be a number of seconds > 0, got '-1'$/],
    [["-t", "0"], /^scheduler: -t must be a number of seconds > 0, got '0'$/],
    [["--evict", "nope"], /^scheduler: --evict must be requeue, kill or suspend, got 'nope'$/],
    [
      ["--url", "http://x"],
      /^scheduler: --url must be a ws:\/\/ or wss:\/\/ URL, got 'http:\/\/x'$/,
    ],
    [["--min-run=-1"], /^scheduler: --min-run must be a number of seconds >= 0, got '-1'$/],
    [["--min-run", "-3"], /^scheduler: --min-run must be a number of seconds >= 0, got '-3'$/],
    [["--exec", ""], /^scheduler: --exec must be an executable file, got '' \(empty\)$/],
    [["--exec", "/nonexistent"], /^scheduler: --exec must be .*'\/nonexistent' \(no such file\)$/],
    [["--exec", "/bin/echo hi"], /^scheduler: --exec takes one executable path, no arguments, got/],
    [["--exec", "/"], /^scheduler: --exec must be an executable file, got '\/' \(not a file\)$/],
    [["--exec", notExecutable.path], /^scheduler: --exec must be .* \(not executable\)$/],
    [["--exec", "no-such-command-here"], /\(not found on PATH\)$/],
    [["-t"], /^scheduler: option '-t' needs a value$/],
    [["--nope"], /^scheduler: unknown option '--nope'$/],
    [["--", "stray"], /^scheduler: unexpected argument 'stray'$/],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.deepEqual(out, []);
    assert.equal(err.length, 2, args.join(" "));
    assert.match(err[0]!, message);
    assert.equal(err[1], USAGE);
  }
});

Deno.test("scheduler main: the design-card flags after the task's --, a job, stop by signal", async () => {
  const { bus, url, producer, monitor } = await busWithPeers();
  await using _bus = bus;
  await using _producer = producer;
  await using _monitor = monitor;
  const stop = new AbortController();
  const running = run(["--", "-s", "5", "-t", "10", "--url", url, "--name", "n1"], stop.signal);
  for (let i = 0; bus.status().schedulers.length === 0; i++) {
    assert.ok(i < 250, "the scheduler never registered");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(bus.status().schedulers[0]?.slots, 5);
  assert.equal(bus.status().schedulers[0]?.name, "n1");
  producer.send(job("quick", 3, 0.1));
  const done = await monitor.next(final("quick"), 10_000);
  assert.equal(done.state, "succeeded");
  assert.equal(done.scheduler, "n1");
  // A job still running when the signal comes is terminated and handed back to the bus.
  producer.send(job("long", 4, 30));
  await monitor.next((m) => m.id === "long" && m.state === "started", 10_000);
  stop.abort();
  const { code, out, err } = await running;
  assert.equal(code, 0);
  assert.deepEqual(err, []);
  const text = out.join("\n");
  assert.match(text, /registered: 5 slots, timeout 10 s, evict requeue/);
  assert.match(text, /job quick p3 succeeded after 0\.\d s \[slots 0\/5, waiting 0\]/);
  assert.match(text, /stopping: terminating 1 job; the bus requeues them/);
  assert.match(text, /job long p4 terminated \(scheduler stopping\)/);
  assert.match(out.at(-1)!, /stopped \(.*succeeded 1, terminated 1\)$/);
  await monitor.next((m) => m.id === "long" && m.state === "requeued");
});

Deno.test("scheduler main --exec runs PATH <runtime> for each job", async () => {
  const { bus, url, producer, monitor } = await busWithPeers();
  await using _bus = bus;
  await using _producer = producer;
  await using _monitor = monitor;
  const stop = new AbortController();
  const running = run(["--url", url, "-s", "2", "-t", "5", "--exec", "/bin/sleep"], stop.signal);
  producer.send(job("exec-job", 2, 0.05));
  const done = await monitor.next(final("exec-job"), 10_000);
  stop.abort();
  const { code, out } = await running;
  assert.equal(code, 0);
  assert.equal(done.state, "succeeded", out.join("\n"));
});

Deno.test("scheduler main: bad command-job flags print one line and the usage, return 2", async () => {
  using file = new TempFile(0o644);
  const cases: [string[], RegExp][] = [
    [
      ["--allow-command", "bin/x"],
      /^scheduler: --allow-command takes a name without '\/', an absolute path or '\*', got 'bin\/x'$/,
    ],
    [["--allow-command", ""], /^scheduler: --allow-command takes .*, got ''$/],
    [["--label", "gpu"], /^scheduler: --label must be NAME=VALUE, got 'gpu'$/],
    [["--label", "=a100"], /^scheduler: --label must be NAME=VALUE, got '=a100'$/],
    [["--label", "a=1", "--label", "a=2"], /^scheduler: --label a given twice$/],
    [["--label", "gpu type=a100"], /^scheduler: --label: name "gpu type" must be 1\.\.64 letters/],
    [["--output-tail", "x"], /^scheduler: --output-tail must be an integer/],
    [["--output-tail", "-1"], /^scheduler: --output-tail must be an integer/],
    [
      ["--output-dir", "/no/such/dir"],
      /^scheduler: --output-dir must be a writable directory, got '\/no\/such\/dir' \(no such directory\)$/,
    ],
    [["--output-dir", file.path], /^scheduler: --output-dir must be .* \(not a directory\)$/],
    [
      ["--user", "no-such-user-here"],
      /^scheduler: --user(: no such user 'no-such-user-here'| needs the scheduler to run as root)$/,
    ],
  ];
  for (const [args, message] of cases) {
    const { code, out, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.deepEqual(out, []);
    assert.equal(err.length, 2, args.join(" "));
    assert.match(err[0]!, message);
    assert.equal(err[1], USAGE);
  }
  assert.match(USAGE, /--allow-command CMD[\s\S]*--label K=V[\s\S]*--output-tail BYTES/);
  assert.match(USAGE, /--output-dir DIR[\s\S]*--clear-env[\s\S]*--user NAME/);
});

Deno.test("scheduler main --allow-command runs a command job: its result and output files come back", async () => {
  const { bus, url, producer, monitor } = await busWithPeers();
  await using _bus = bus;
  await using _producer = producer;
  await using _monitor = monitor;
  const dir = Deno.makeTempDirSync({ prefix: "scheduler_main_test_" });
  try {
    const stop = new AbortController();
    const args = ["--url", url, "--name", "n2", "--allow-command", "sh", "--label", "os=linux"];
    const running = run([...args, "--output-dir", dir, "--output-tail", "3"], stop.signal);
    const command = ["sh", "-c", "echo hello; echo oops >&2; exit 3"];
    producer.send({ cmd: "job_request", id: "cmd-1", payload: { priority: 2, command } });
    const done = await monitor.next(final("cmd-1"), 10_000);
    stop.abort();
    const { code, out } = await running;
    assert.equal(code, 0);
    assert.equal(done.state, "failed", out.join("\n"));
    const result = done.result as Record<string, unknown>;
    assert.equal(result.exitCode, 3);
    assert.equal(result.signal, null);
    assert.equal(result.scheduler, "n2");
    assert.equal(result.attempts, 1);
    assert.equal(result.stdoutTail, "lo\n");
    assert.equal(result.stdoutTruncated, true);
    assert.equal(Deno.readTextFileSync(`${dir}/cmd-1.out`), "hello\n");
    assert.equal(result.stderrFile, `${dir}/cmd-1.err`);
    const text = out.join("\n");
    assert.match(
      text,
      /registered: 5 slots, timeout 10 s, evict requeue, commands sh, labels os=linux/,
    );
    assert.match(text, /job cmd-1 p2 started \(sh -c "echo hello; echo oops >&2; exit 3"\)/);
    assert.match(text, /job cmd-1 p2 failed: exit code 3 after/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const SECRET = "sched_c2NoZWR1bGVy-token_42";

tlsTest(
  "scheduler main registers over wss:// with --ca and --token-file; says the certificate error without --ca",
  async (certs) => {
    await using bus = new AuthBus({ token: SECRET, certs });
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/token`, `${SECRET}\n`);
      const base = ["--url", bus.url, "--token-file", `${dir}/token`, "--name", "tls-s"];
      const controller = new AbortController();
      const trusted = await run([...base, "--ca", certs.caFile], controller.signal, (line) => {
        if (line.includes("registered")) controller.abort();
      });
      assert.equal(trusted.code, 0, trusted.err.join("\n"));
      assert.deepEqual(bus.authorizations, [`Bearer ${SECRET}`]);
      assert.equal(bus.received[0]?.type, "scheduler");
      const stop = new AbortController();
      const untrusted = await run(base, stop.signal, (line) => {
        if (line.includes("TLS")) stop.abort();
      });
      assert.equal(untrusted.code, 0);
      const refusals = untrusted.out.filter((line) => line.includes("TLS"));
      assert.equal(refusals.length, 1, untrusted.out.join("\n"));
      assert.match(
        refusals[0]!,
        /^\d\d:\d\d:\d\d\.\d{3} cannot connect to wss:.*: TLS handshake with 127\.0\.0\.1:\d+ failed: invalid peer certificate: UnknownIssuer$/,
      );
      assert.ok(![...trusted.out, ...untrusted.out].some((line) => line.includes(SECRET)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("scheduler main says a 401 once, in one line, without -d", async () => {
  await using bus = new AuthBus({ token: SECRET });
  const controller = new AbortController();
  const running = run(["--url", bus.url, "--name", "no-token"], controller.signal);
  await bus.upgrades(3);
  controller.abort();
  const { code, out } = await running;
  assert.equal(code, 0);
  const refusals = out.filter((line) => line.includes("refused"));
  assert.equal(refusals.length, 1, out.join("\n"));
  assert.match(refusals[0]!, /401 Unauthorized: missing token$/);
});

Deno.test("scheduler main refuses an empty --token-file in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/token`, "  \n");
    const { code, err } = await run(["--token-file", `${dir}/token`]);
    assert.equal(code, 2);
    assert.equal(err[0], `scheduler: --token-file '${dir}/token': its first line is empty`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
