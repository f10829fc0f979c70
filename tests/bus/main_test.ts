// deno-lint-ignore-file no-console
import assert from "node:assert/strict";
import { main } from "../../bus/main.ts";
import { withTimeout, WsPeer } from "../fixtures/raw_ws.ts";

/** Runs `fn` with console.log/error captured. */
async function captured(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
}

Deno.test("bus main: --help prints usage and returns 0, also after the task's --", async () => {
  const help = await captured(() => main(["--", "--help"]));
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage: deno task bus/);
});

Deno.test("bus main: a bad flag prints one line and the usage, returns 2", async () => {
  for (const args of [["--nope"], ["--port", "70000"], ["--ping-timeout", "-1"], ["x"]]) {
    const result = await captured(() => main(args));
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.out, /^bus: .*\n[\s\S]*Usage:/);
  }
});

Deno.test("bus main: serves, logs, and exits 0 on SIGTERM after closing sockets with 1001", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("../../bus/main.ts", import.meta.url).pathname,
      "--port",
      "0",
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
    const url = out.match(/listening on (ws:\/\/\S+\/) \(/)![1];
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
