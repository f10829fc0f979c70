import assert from "node:assert/strict";
import { main, USAGE } from "../../demo.ts";
import { cliRunner } from "../fixtures/cli_run.ts";

/** Runs the CLI's `main` with captured output. */
const run = cliRunner(main);

Deno.test("demo main --help prints the usage and returns 0, also after the task's --", async () => {
  const { code, out, err } = await run(["--", "--help"]);
  assert.equal(code, 0);
  assert.deepEqual(out, [USAGE]);
  assert.deepEqual(err, []);
  assert.match(USAGE, /^Usage: deno task demo \[-- options\]\n/);
});

Deno.test("demo main: a bad flag prints one line and the usage, returns 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--duration", "-5"], /^demo: --duration must be a number of seconds > 0, got '-5'$/],
    [["--duration", "0"], /^demo: --duration must be a number of seconds > 0, got '0'$/],
    [["--schedulers", "0"], /^demo: --schedulers must be an integer >= 1, got '0'$/],
    [["--slots", "2.5"], /^demo: --slots must be an integer >= 1, got '2\.5'$/],
    [["--timeout", "-1"], /^demo: --timeout must be a number of seconds > 0, got '-1'$/],
    [["--period", "soon"], /^demo: --period must be a number of seconds > 0, got 'soon'$/],
    [["--duration"], /^demo: option '--duration' needs a value$/],
    [["--nope"], /^demo: unknown option '--nope'$/],
    [["stray"], /^demo: unexpected argument 'stray'$/],
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
