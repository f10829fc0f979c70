// deno-lint-ignore-file no-console -- the test captures the CLI's console output
import assert from "node:assert/strict";
import { main } from "../../process/demo.ts";

/** Runs `main(args)` with console.log/error captured. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { log, error } = console;
  let out = "";
  let err = "";
  console.log = (...parts: unknown[]) => void (out += parts.join(" ") + "\n");
  console.error = (...parts: unknown[]) => void (err += parts.join(" ") + "\n");
  try {
    return { code: await main(args), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("process demo --help lists the showcases and returns 0", async () => {
  const { code, out } = await run(["--", "--help"]);
  assert.equal(code, 0);
  for (const name of ["raw", "await", "callback", "timeout", "terminate"]) {
    assert.match(out, new RegExp(`^  ${name} `, "m"));
  }
});

Deno.test("process demo rejects an unknown showcase or flag with one line, usage and 2", async () => {
  const bad = await run(["nope"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^process-demo: unknown showcase 'nope'\nUsage:/);
  const flag = await run(["--", "--fast"]);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /^process-demo: .*--fast.*\nUsage:/);
});

Deno.test("process demo runs a showcase by name and prints its outcome", async () => {
  const { code, out } = await run(["await"]);
  assert.equal(code, 0);
  assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} == await:/m);
  assert.match(out, /outcome: success \(code 0/);
});
