import assert from "node:assert/strict";
import { main, parseRuntime, SLEEPER_URL } from "../../scheduler/sleeper.ts";

/** Starts the sleeper as a child with no permissions, the way launchers do. */
function spawnSleeper(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "-q", SLEEPER_URL.pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Waits (bounded) until the child listens to SIGINT: its handler is installed (SigCgt bit 2 on
 * Linux) and, since then, its main thread has gone to sleep, so `Deno.addSignalListener` has
 * returned. The bit alone is not enough: a SIGINT sent as soon as it appeared still killed the
 * child (130) in about 1 run in 10 on two loaded cores; with the sleep as well, none in 120.
 */
async function waitForSigintHandler(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const caught = BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(status)?.[1] ?? "0"}`);
    const sleeping = /^State:\s*S/m.test(status);
    if ((caught & 2n) && sleeping) return; // bit 1 is signal 2, SIGINT
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`pid ${pid} did not install a SIGINT handler within 5 s`);
}

Deno.test("parseRuntime accepts seconds >= 0, fractions and exponents", () => {
  assert.equal(parseRuntime("2"), 2);
  assert.equal(parseRuntime("0.05"), 0.05);
  assert.equal(parseRuntime("0"), 0);
  assert.equal(parseRuntime(String(1e-7)), 1e-7);
});

Deno.test("parseRuntime rejects a missing, non-numeric, negative or infinite runtime", () => {
  assert.throws(() => parseRuntime(undefined), { name: "TypeError", message: /missing RUNTIME/ });
  assert.throws(() => parseRuntime("abc"), { name: "TypeError", message: /got "abc"/ });
  assert.throws(() => parseRuntime(" "), TypeError);
  assert.throws(() => parseRuntime("-1"), { name: "RangeError", message: />= 0, got -1/ });
  assert.throws(() => parseRuntime("Infinity"), RangeError);
});

Deno.test("sleeper main sleeps in-process and returns 0", async () => {
  const start = performance.now();
  assert.equal(await main(["--", "0.02"]), 0);
  assert.ok(performance.now() - start >= 19);
});

Deno.test("sleeper sleeps roughly the runtime given, without permissions, and exits 0", async () => {
  const start = performance.now();
  const child = spawnSleeper(["0.3"]);
  const { code, stdout, stderr } = await child.output();
  const elapsedMs = performance.now() - start;
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  assert.equal(stdout.length + stderr.length, 0, "silent");
  assert.ok(elapsedMs >= 290 && elapsedMs < 10_000, `took ${elapsedMs} ms`);
});

Deno.test("sleeper survives SIGINT and finishes its sleep", async () => {
  const child = spawnSleeper(["0.5"]);
  await waitForSigintHandler(child.pid);
  child.kill("SIGINT");
  const { code, signal } = await child.output();
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
});

Deno.test("sleeper dies at once on SIGTERM", async () => {
  const child = spawnSleeper(["30"]);
  await waitForSigintHandler(child.pid); // it is up and sleeping
  const start = performance.now();
  child.kill("SIGTERM");
  const { signal } = await child.output();
  assert.equal(signal, "SIGTERM");
  assert.ok(performance.now() - start < 5_000);
});

Deno.test("sleeper rejects a bad runtime with one line on stderr and exit code 2", async () => {
  for (const args of [[], ["-1"], ["abc"], ["1", "2"], ["--bogus"]]) {
    const { code, stderr } = await spawnSleeper(args).output();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 2, `args ${JSON.stringify(args)}`);
    assert.match(text, /^Cannot run sleeper: [^\n]+\n$/, `args ${JSON.stringify(args)}`);
  }
});

Deno.test("sleeper --help prints the usage and exits 0", async () => {
  const { code, stdout } = await spawnSleeper(["--help"]).output();
  assert.equal(code, 0);
  assert.match(new TextDecoder().decode(stdout), /^Usage: deno run scheduler\/sleeper.ts RUNTIME/);
});
