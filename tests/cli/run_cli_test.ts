import assert from "node:assert/strict";
import { formatUsage, integerFlag, plural, runCli, stamp } from "../../cli/mod.ts";
import { runMain } from "../fixtures/cli_run.ts";
import type { MainOptions } from "../../cli/mod.ts";

const USAGE = formatUsage({
  command: "deno task count",
  about: "Counts to N.",
  sections: [
    {
      title: "Options",
      rows: [["--to N", "the last number\n(default 3)"], ["-h, --help", "help"]],
    },
    { title: "More", rows: [["--loud", "shout"]] },
    { title: "Exit codes", rows: [["0", "counted"], ["2", "bad command line"]] },
  ],
  examples: ["deno task count -- --to 5"],
});

function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli(
    {
      name: "count",
      usage: USAGE,
      options: { to: { type: "string", default: "3" }, boom: { type: "boolean", default: false } },
      configure: ({ values }) => {
        if (values.boom) throw new Error("not a usage error");
        return integerFlag("--to", values.to, { min: 1 });
      },
      run: (to, io) => {
        for (let i = 1; i <= to; i++) io.log(String(i));
        return Promise.resolve(0);
      },
    },
    args,
    options,
  );
}

Deno.test("formatUsage lays out every CLI's usage in one shape", () => {
  assert.equal(
    USAGE,
    `Usage: deno task count [-- options]

Counts to N.

Options:
  --to N      the last number
              (default 3)
  -h, --help  help

More:
  --loud      shout

Exit codes:
  0  counted
  2  bad command line

Examples:
  deno task count -- --to 5`,
  );
});

Deno.test("runCli: --help prints the usage on stdout and returns 0", async () => {
  for (const args of [["--help"], ["--", "-h"], ["--to", "-1", "-h"]]) {
    const { code, out, err } = await runMain(main, args);
    assert.equal(code, 0, args.join(" "));
    assert.deepEqual(out, [USAGE]);
    assert.deepEqual(err, []);
  }
});

Deno.test("runCli: a usage error prints 'name: message' and the usage on stderr, returns 2", async () => {
  const { code, out, err } = await runMain(main, ["--to", "-1"]);
  assert.equal(code, 2);
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["count: --to must be an integer >= 1, got '-1'", USAGE]);
});

Deno.test("runCli: other errors are not usage errors and propagate", async () => {
  await assert.rejects(() => runMain(main, ["--boom"]), /not a usage error/);
});

Deno.test("runCli: run gets stamped log lines on the injected clock and returns its code", async () => {
  const at = new Date(2026, 0, 2, 3, 4, 5, 6).getTime();
  const lines: string[] = [];
  const clock = { now: () => at, setTimeout, clearTimeout };
  const code = await main(["--to", "2"], { clock, stdout: (line) => lines.push(line) });
  assert.equal(code, 0);
  assert.deepEqual(lines, ["03:04:05.006 1", "03:04:05.006 2"]);
  assert.equal(stamp(new Date(at)), "03:04:05.006");
});

Deno.test("plural says 1 job, 2 jobs", () => {
  assert.deepEqual([plural(0, "job"), plural(1, "job"), plural(2, "job")], [
    "0 jobs",
    "1 job",
    "2 jobs",
  ]);
  assert.equal(plural(2, "child", "children"), "2 children");
});
