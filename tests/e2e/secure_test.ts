/**
 * End to end, the secure setup of docs/security.md through the real CLIs as child processes:
 * tokens made with `bus token add`, a bus with `--auth`, `--cert` and `--key`, a scheduler and
 * `submit` on `wss://` with `--ca` and `SCHED_TOKEN`; then what is refused: no token, a CA that
 * did not sign the bus's certificate, a revoked token. Skipped, saying why, without openssl.
 */

import assert from "node:assert/strict";
import { Cli, descendants, survivors, until } from "../fixtures/e2e_cli.ts";
import { type TlsCerts, tlsTest } from "../fixtures/tls_certs.ts";

/** The CLIs one test starts, all stopped (killed if still running) at its end. */
class Clis implements AsyncDisposable {
  readonly all: Cli[] = [];

  run(module: string, args: string[], label: string, token?: string): Cli {
    const cli = Cli.run(module, args, label, {
      permissions: ["--allow-read", "--allow-write"],
      ...(token !== undefined && { env: { SCHED_TOKEN: token } }),
    });
    this.all.push(cli);
    return cli;
  }

  /** Runs `bus token …` with the auth file to its end; returns its exit code and lines. */
  async token(args: string[], file: string): Promise<Cli> {
    const cli = this.run("bus/main.ts", ["token", ...args, "--auth", file], `token ${args[0]}`);
    await cli.exitCode();
    return cli;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const cli of this.all.toReversed()) await cli[Symbol.asyncDispose]();
  }
}

/** `token add NAME --role ROLE`: the secret, the one stdout line starting `sched_`. */
async function addToken(clis: Clis, file: string, name: string, role: string): Promise<string> {
  const cli = await clis.token(["add", name, "--role", role], file);
  assert.equal(cli.proc.outcome?.code, 0, cli.text);
  const secret = cli.lines.find((line) => /^sched_[A-Za-z0-9_-]+$/.test(line));
  assert.ok(secret, `no secret in:\n${cli.text}`);
  return secret;
}

/** `submit` on `url` trusting `ca`, with `token` in its SCHED_TOKEN (none when undefined). */
function submit(
  clis: Clis,
  url: string,
  ca: string,
  token: string | undefined,
  args: string[],
): Cli {
  return clis.run("producer/submit.ts", ["--url", url, "--ca", ca, ...args], "submit", token);
}

async function secureRun(certs: TlsCerts): Promise<void> {
  const file = `${certs.dir}/auth.json`;
  await using clis = new Clis();
  const schedulerToken = await addToken(clis, file, "node-a", "scheduler");
  const producerToken = await addToken(clis, file, "alice", "producer");
  assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
  assert.ok(!(await Deno.readTextFile(file)).includes(producerToken), "the secret is not stored");

  const bus = clis.run("bus/main.ts", [
    ...[
      "--auth",
      file,
      "--cert",
      certs.certFile,
      "--key",
      certs.keyFile,
      "--port",
      "0",
      "--memory",
    ],
  ], "bus");
  const [, url] = await bus.waitFor(/listening on (wss:\/\/\S+\/)/);
  await bus.waitFor(/auth: 2 tokens from .*every client needs one/);

  const scheduler = clis.run(
    "scheduler/main.ts",
    [
      ...["--url", url!, "--ca", certs.caFile, "-s", "2", "--allow-command", "sh"],
    ],
    "node-a",
    schedulerToken,
  );
  await scheduler.waitFor(/registered as node-a \(its token.s name\): 2 slots/);
  await bus.waitFor(/registered as scheduler "node-a"/);

  const ok = submit(clis, url!, certs.caFile, producerToken, [
    ...["--wait", "--", "sh", "-c", "echo secure"],
  ]);
  assert.equal(await ok.exitCode(30_000), 0, ok.text);
  assert.match(ok.text, /^secure$/m);

  const anonymous = submit(clis, url!, certs.caFile, undefined, ["--", "sh", "-c", "true"]);
  assert.equal(await anonymous.exitCode(), 4, anonymous.text);
  assert.match(anonymous.text, /missing token/);

  const wrongCa = submit(clis, url!, certs.otherCaFile, producerToken, ["--", "sh", "-c", "true"]);
  assert.equal(await wrongCa.exitCode(), 4, wrongCa.text);
  assert.match(wrongCa.text, /TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate/i);

  const revoke = await clis.token(["revoke", "alice"], file);
  assert.equal(revoke.proc.outcome?.code, 0, revoke.text);
  // The bus reads the file again within a second or two: ask (a read, no job) until it has.
  let last: Cli | undefined;
  await until("the bus refuses the revoked token", () => {
    if (last !== undefined && last.proc.outcome === undefined) return false;
    if (last !== undefined && /unknown token/.test(last.text)) return true;
    const args = ["--url", url!, "--ca", certs.caFile, "list"];
    last = clis.run("producer/jobs.ts", args, "jobs list", producerToken);
    return false;
  }, 20_000);
  const revoked = submit(clis, url!, certs.caFile, producerToken, ["--", "sh", "-c", "true"]);
  assert.equal(await revoked.exitCode(), 4, revoked.text);
  assert.match(revoked.text, /unknown token/);

  const tree = [scheduler.pid, ...descendants(scheduler.pid), bus.pid];
  scheduler.signal("SIGTERM");
  assert.equal(await scheduler.exitCode(), 0, scheduler.text);
  bus.signal("SIGTERM");
  assert.equal(await bus.exitCode(), 0, bus.text);
  assert.deepEqual(await survivors(tree), [], "every process ended");
}

tlsTest(
  "secure: tokens and TLS through the CLIs; no token, a wrong CA, a revoked token refused",
  secureRun,
);
