import assert from "node:assert/strict";
import { main, USAGE } from "../../bus/main.ts";
import { cliRunner } from "../fixtures/cli_run.ts";
import { withTimeout, WsPeer } from "../fixtures/raw_ws.ts";
import { upgradeAnswer } from "../fixtures/raw_ws.ts";
import { TOKEN_USAGE } from "../../bus/token_cli.ts";
import { TokenStore } from "../../bus/token_store.ts";
import { throwawayTls } from "./throwaway_tls.ts";

/** Runs the CLI's `main` with captured output; a bus gets `--memory` unless told where. */
const runCli = cliRunner(main);
const run: typeof runCli = (args, ...rest) =>
  runCli(
    args.find((arg) => arg !== "--") === "token" || args.includes("--data") ||
      args.includes("--memory")
      ? args
      : [...args, "--memory"],
    ...rest,
  );

/** Starts the bus CLI in-process on a free port; resolves its URL once it listens. */
function startBus(args: string[], stop: AbortSignal): {
  url: Promise<string>;
  done: ReturnType<typeof run>;
} {
  const { promise: url, resolve } = Promise.withResolvers<string>();
  const done = run(["--port", "0", ...args], stop, (line) => {
    const listening = /listening on (ws:\/\/\S+\/) \(/.exec(line);
    if (listening?.[1]) resolve(listening[1]);
  });
  return { url, done };
}

Deno.test("bus main: --help prints usage and returns 0, also after the task's --", async () => {
  const help = await run(["--", "--help"]);
  assert.equal(help.code, 0);
  assert.deepEqual(help.out, [USAGE]);
  assert.match(USAGE, /^Usage: deno task bus \[-- options\]/);
  assert.match(USAGE, /Exit codes:\n {2}0 /);
});

Deno.test("bus main: a bad flag prints one line and the usage, returns 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--nope"], /^bus: unknown option '--nope'$/],
    [["--port", "70000"], /^bus: --port must be an integer 0\.\.65535, got '70000'$/],
    [["--port", "-1"], /^bus: --port must be an integer 0\.\.65535, got '-1'$/],
    [["--max-queue", "-5"], /^bus: --max-queue must be an integer >= 1, got '-5'$/],
    [["--max-frame", "10"], /^bus: --max-frame must be an integer >= 1024, got '10'$/],
    [["--ping-timeout", "0"], /^bus: --ping-timeout must be an integer >= 1, got '0'$/],
    [["--ping-timeout", "-1"], /^bus: --ping-timeout must be an integer >= 1, got '-1'$/],
    [["--port"], /^bus: option '--port' needs a value$/],
    [["x"], /^bus: unexpected argument 'x'$/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.deepEqual(result.out, [], args.join(" "));
    assert.equal(result.err.length, 2, args.join(" "));
    assert.match(result.err[0]!, message);
    assert.equal(result.err[1], USAGE);
  }
});

Deno.test("bus main: a port in use is one line on stderr and exit 1", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { code, err } = await run(["--port", String(taken.addr.port)]);
  assert.equal(code, 1);
  assert.equal(err.length, 1);
  assert.match(err[0]!, /^bus: cannot listen on 127\.0\.0\.1:\d+: .*another bus there\?/);
});

Deno.test("bus main: bad store flags are one line and exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--memory", "--data", "x"], /^bus: --memory and --data go against each other/],
    [["--data", ""], /^bus: --data must not be empty/],
    [["--sync", "often"], /^bus: --sync must be full or normal, got "often"/],
    [["--keep-finished", "soon"], /^bus: --keep-finished: expected AGE\[,N\]/],
    [["--recover-grace", "-1"], /^bus: --recover-grace/],
  ];
  for (const [args, reason] of cases) {
    const { code, err } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(err[0]!, reason);
  }
});

Deno.test("bus main: --data keeps jobs across a restart; a second bus on the same directory is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const stop = new AbortController();
    const bus = startBus(["--data", dir], stop.signal);
    const url = await withTimeout(bus.url, 10_000, "the listening line");
    const second = await run(["--port", "0", "--data", dir]);
    assert.equal(second.code, 1);
    assert.equal(second.err.length, 1, second.err.join("\n"));
    assert.match(second.err[0]!, /^bus: data directory .* is in use by another bus \(pid \d+\)/);
    {
      await using p = await WsPeer.open(url);
      await p.register({ type: "producer", protocol: 2, name: "ann" });
      for (const id of ["a", "b"]) {
        p.send({ cmd: "job_request", id, payload: { priority: 4, runtime: 1 } });
        await p.next((m) => m.cmd === "accepted" && m.id === id);
      }
    }
    stop.abort();
    const first = await bus.done;
    assert.equal(first.code, 0);
    assert.match(first.out.join("\n"), /jobs kept in .* \(sync full\)/);
    const stop2 = new AbortController();
    const again = startBus(["--data", dir], stop2.signal);
    const url2 = await withTimeout(again.url, 10_000, "the listening line");
    {
      await using p = await WsPeer.open(url2);
      await p.register({ type: "producer", protocol: 2, name: "ann" });
      p.send({ cmd: "list" });
      const list = await p.next((m) => m.cmd === "jobs");
      assert.deepEqual((list.jobs as { id: string }[]).map((j) => j.id), ["a", "b"]);
    }
    stop2.abort();
    const { code, out } = await again.done;
    assert.equal(code, 0);
    assert.match(out.join("\n"), /recovered 2 waiting jobs/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus main: a corrupt data file is refused, untouched, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const garbage = new TextEncoder().encode("this is not a database, not at all".repeat(40));
    await Deno.writeFile(`${dir}/bus.sqlite`, garbage);
    const { code, err } = await run(["--port", "0", "--data", dir]);
    assert.equal(code, 1);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(err[0]!, /^bus: .*not a SQLite database/);
    assert.deepEqual(await Deno.readFile(`${dir}/bus.sqlite`), garbage);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bus main: warns when a second scheduler registers with a name already in use", async () => {
  const stop = new AbortController();
  const bus = startBus([], stop.signal);
  const url = await withTimeout(bus.url, 10_000, "the listening line");
  {
    await using a = await WsPeer.open(url);
    await using b = await WsPeer.open(url);
    await a.register({ type: "scheduler", protocol: 2, name: "same", slots: 1 });
    await b.register({ type: "scheduler", protocol: 2, name: "same", slots: 1 });
  }
  stop.abort();
  const { code, out, err } = await bus.done;
  assert.equal(code, 0);
  assert.equal(err.length, 1, err.join("\n"));
  assert.match(
    err[0]!,
    /^\d\d:\d\d:\d\d\.\d{3} warning: c\d+: scheduler name "same" is already used by connection c\d+ /,
  );
  assert.match(out.join("\n"), /registered as scheduler "same"[\s\S]*bus stopped$/);
});

Deno.test("bus main: serves, logs, and exits 0 on SIGTERM after closing sockets with 1001", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("../../bus/main.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--memory",
      "-d",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    while (!/listening on (ws:\/\/\S+\/) \(/.test(out)) {
      const { value, done } = await withTimeout(reader.read(), 10_000, "the listening line");
      if (done) break;
      out += value;
    }
    const url = out.match(/listening on (ws:\/\/\S+\/) \(/)![1]!;
    assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} bus listening/m);
    const peer = await WsPeer.open(url);
    await peer.register({ type: "monitor", protocol: 2 });
    child.kill("SIGTERM");
    assert.equal((await withTimeout(peer.closed, 5000, "the close")).code, 1001);
    const status = await withTimeout(child.status, 10_000, "exit");
    assert.equal(status.code, 0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.match(out, /registered as monitor/);
    assert.match(out, /SIGTERM: closing every connection/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await reader.cancel().catch(() => {});
    await child.stderr.cancel();
  }
});

// --- Tokens: `token add|list|revoke`, `--auth`, `--allow-seed-clients` ---

async function tempAuth(): Promise<{ file: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  return {
    file: `${dir}/auth.json`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

Deno.test("bus main: token add prints the secret once, list shows it, revoke removes it", async () => {
  await using auth = await tempAuth();
  const added = await run([
    "--",
    "token",
    "add",
    "alice",
    "--role",
    "producer",
    "--auth",
    auth.file,
  ]);
  assert.equal(added.code, 0, added.err.join("\n"));
  assert.equal(added.out.length, 1);
  const secret = added.out[0]!;
  assert.match(secret, /^sched_[A-Za-z0-9_-]{43}$/);
  assert.match(added.err.join("\n"), /token "alice" \(producer\) added to .*SCHED_TOKEN/);
  assert.ok(!(await Deno.readTextFile(auth.file)).includes(secret), "only the hash is stored");
  assert.equal((await Deno.stat(auth.file)).mode! & 0o777, 0o600);
  assert.equal((await TokenStore.load(auth.file).then((s) => s.verify(secret)))?.name, "alice");
  assert.equal(
    (await run(["token", "add", "node-a", "--role", "scheduler", "--auth", auth.file])).code,
    0,
  );
  const list = await run(["token", "list", "--auth", auth.file]);
  assert.equal(list.code, 0);
  assert.match(list.out[0]!, /^NAME +ROLE +CREATED$/);
  assert.match(list.out[1]!, /^alice +producer +\d{4}-\d\d-\d\dT/);
  assert.match(list.out[2]!, /^node-a +scheduler +\d{4}-/);
  assert.ok(!list.out.join("\n").includes(secret));
  const again = await run(["token", "add", "alice", "--role", "admin", "--auth", auth.file]);
  assert.deepEqual([again.code, again.out], [1, []]);
  assert.match(again.err[0]!, /^bus token: Cannot add token: a token named "alice" exists/);
  const revoked = await run(["token", "revoke", "alice", "--auth", auth.file]);
  assert.equal(revoked.code, 0);
  const gone = await run(["token", "revoke", "alice", "--auth", auth.file]);
  assert.deepEqual([gone.code, gone.err.length], [1, 1]);
  assert.match(gone.err[0]!, /^bus token: no token named "alice" in /);
  assert.equal((await run(["token", "list", "--auth", auth.file])).out.length, 2);
});

Deno.test("bus main: token refuses a bad command line with one line and its usage", async () => {
  await using auth = await tempAuth();
  const cases: [string[], RegExp][] = [
    [[], /^bus token: a command is needed: add, list or revoke$/],
    [["remove", "x"], /^bus token: unknown command 'remove'$/],
    [
      ["add", "alice"],
      /^bus token: add needs --role \(producer, scheduler, monitor, admin, metrics\)$/,
    ],
    [["add", "alice", "--role", "root"], /^bus token: --role must be one of .*, got 'root'$/],
    [["add", "a b", "--role", "admin"], /^bus token: a token name must be 1\.\.64/],
    [["add", "--role", "admin"], /^bus token: add needs a token NAME$/],
    [["revoke"], /^bus token: revoke needs a token NAME$/],
    [["list", "x"], /^bus token: unexpected argument 'x'$/],
    [["list", "--role", "admin"], /^bus token: list takes no --role$/],
  ];
  for (const [args, message] of cases) {
    const result = await run(["token", ...args, "--auth", auth.file]);
    assert.equal(result.code, 2, args.join(" "));
    assert.equal(result.err.length, 2, args.join(" "));
    assert.match(result.err[0]!, message);
    assert.equal(result.err[1], TOKEN_USAGE);
  }
  assert.equal((await run(["token", "--help"])).out[0], TOKEN_USAGE);
  const missing = await run(["token", "list", "--auth", auth.file]);
  assert.equal(missing.code, 1);
  assert.match(missing.err[0]!, /^bus token: Cannot load tokens from .*: no such file/);
});

Deno.test("bus main: --auth needs a readable token file; --allow-seed-clients needs --auth", async () => {
  await using auth = await tempAuth();
  const missing = await run(["--port", "0", "--auth", auth.file]);
  assert.equal(missing.code, 1);
  assert.equal(missing.err.length, 1);
  assert.match(missing.err[0]!, /^bus: --auth: Cannot load tokens from .*auth\.json: no such file/);
  await Deno.writeTextFile(auth.file, "{}");
  const corrupt = await run(["--port", "0", "--auth", auth.file]);
  assert.equal(corrupt.code, 1);
  assert.match(corrupt.err[0]!, /not a token file/);
  const seeds = await run(["--allow-seed-clients"]);
  assert.equal(seeds.code, 2);
  assert.match(seeds.err[0]!, /^bus: --allow-seed-clients needs --auth/);
});

Deno.test("bus main: with --auth, a client needs a token and registers as its name", async () => {
  await using auth = await tempAuth();
  const added = await run(["token", "add", "node-a", "--role", "scheduler", "--auth", auth.file]);
  const secret = added.out[0]!;
  const stop = new AbortController();
  const bus = startBus(["--auth", auth.file], stop.signal);
  const url = await withTimeout(bus.url, 10_000, "the listening line");
  const port = Number(new URL(url).port);
  assert.equal((await upgradeAnswer(port)).status, 401);
  {
    await using peer = await WsPeer.open(url, 3000, {
      headers: { authorization: `Bearer ${secret}` },
    });
    const registered = await peer.register({ type: "scheduler", protocol: 2, name: "x", slots: 1 });
    assert.equal(registered?.name, "node-a");
  }
  stop.abort();
  const { code, out, err } = await bus.done;
  assert.equal(code, 0);
  assert.match(out.join("\n"), /auth: 1 token from .*auth\.json; every client needs one/);
  assert.match(out.join("\n"), /registered as scheduler "node-a"/);
  assert.match(err.join("\n"), /warning: auth: missing token from 127\.0\.0\.1/);
});

// --- Safe defaults, TLS and limits (issue 10) ---

Deno.test("bus main: refuses a --host that is not loopback without --auth, one line, exit 2", async () => {
  for (const host of ["0.0.0.0", "192.0.2.1", "::", "bus.example"]) {
    const { code, out, err } = await run(["--host", host, "--port", "0"]);
    assert.equal(code, 2, host);
    assert.deepEqual(out, [], host);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(
      err[0]!,
      /^bus: refusing to listen on \S+ without --auth: .*\(use --auth FILE, or --insecure/,
    );
  }
});

Deno.test("bus main: --insecure lets a non-loopback --host through, with a warning first", async () => {
  // 192.0.2.1 (TEST-NET) is no address of this machine: nothing gets exposed, listen fails.
  const { code, err } = await run(["--host", "192.0.2.1", "--port", "0", "--insecure"]);
  assert.equal(code, 1, err.join("\n"));
  assert.equal(err.length, 2, err.join("\n"));
  assert.match(err[0]!, /warning: bus: --insecure: listening on 192\.0\.2\.1 without --auth/);
  assert.match(err[1]!, /^bus: cannot listen on 192\.0\.2\.1:0/);
});

Deno.test("bus main: says that a loopback bus without --auth is open to this machine", async () => {
  for (const host of ["127.0.0.1", "127.0.0.2", "localhost"]) {
    const stop = new AbortController();
    const bus = startBus(["--host", host], stop.signal);
    await withTimeout(bus.url, 10_000, "the listening line");
    stop.abort();
    const { code, out } = await bus.done;
    assert.equal(code, 0, host);
    assert.match(out.join("\n"), /no --auth: anyone on this machine may use the bus/);
  }
});

Deno.test("bus main: new limit flags are checked like the others", async () => {
  const cases: [string[], RegExp][] = [
    [["--max-connections", "0"], /^bus: --max-connections must be an integer >= 1, got '0'$/],
    [["--max-rate", "x"], /^bus: --max-rate must be an integer >= 1, got 'x'$/],
    [["--max-queue-per-owner", "0"], /^bus: --max-queue-per-owner must be an integer >= 1/],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.err[0]!, message);
  }
});

Deno.test("bus main: --max-connections answers the next upgrade with 503", async () => {
  const stop = new AbortController();
  const bus = startBus(["--max-connections", "1"], stop.signal);
  const url = await withTimeout(bus.url, 10_000, "the listening line");
  {
    await using first = await WsPeer.open(url);
    await first.register({ type: "monitor", protocol: 2 });
    const refused = await fetch(url.replace("ws:", "http:"), {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(refused.status, 503);
    assert.deepEqual(await refused.json(), { error: "too many connections" });
  }
  stop.abort();
  assert.equal((await bus.done).code, 0);
});

Deno.test("bus main: --cert and --key serve wss://; one of them alone or unreadable is one line", async () => {
  const tls = await throwawayTls();
  if (typeof tls === "string") {
    // deno-lint-ignore no-console
    console.warn(`skipped: cannot make a test certificate: ${tls}`);
    return;
  }
  try {
    const alone = await run(["--port", "0", "--cert", tls.paths.cert]);
    assert.equal(alone.code, 2);
    assert.deepEqual(alone.err, ["bus: --cert and --key go together: give both or neither"]);
    const missing = await run(["--port", "0", "--cert", tls.paths.cert, "--key", "/nonexistent"]);
    assert.equal(missing.code, 2);
    assert.equal(missing.err.length, 1);
    assert.match(missing.err[0]!, /^bus: --key: cannot read \/nonexistent \(/);
    const stop = new AbortController();
    const { promise: listening, resolve } = Promise.withResolvers<string>();
    const done = run(
      ["--port", "0", "--cert", tls.paths.cert, "--key", tls.paths.key],
      stop.signal,
      (line) => {
        const url = /listening on (wss:\/\/\S+\/) \(/.exec(line)?.[1];
        if (url) resolve(url);
      },
    );
    const url = await withTimeout(listening, 10_000, "the listening line");
    using client = Deno.createHttpClient({ caCerts: [tls.ca] });
    const health = await fetch(`${url.replace("wss:", "https:")}health`, { client });
    assert.equal((await health.json()).status, "ok");
    stop.abort();
    assert.equal((await done).code, 0);
  } finally {
    await tls.remove();
  }
});
