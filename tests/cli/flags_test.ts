import assert from "node:assert/strict";
import { parseFlags, UsageError } from "../../cli/mod.ts";

const OPTIONS = {
  port: { type: "string" },
  period: { type: "string", short: "p" },
  s: { type: "string" },
  debug: { type: "boolean", short: "d" },
} as const;

/** The UsageError message `parseFlags(args)` throws. */
function refusal(args: string[], positionals = false): string {
  try {
    parseFlags(args, OPTIONS, { positionals });
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.name, "UsageError");
    return error.message;
  }
  assert.fail(`accepted: ${args.join(" ")}`);
}

Deno.test("parseFlags drops the leading -- of deno task, and only that one", () => {
  assert.equal(parseFlags(["--", "--port", "1"], OPTIONS).values.port, "1");
  const { values, positionals } = parseFlags(["-d", "--", "--port"], OPTIONS, {
    positionals: true,
  });
  assert.equal(values.debug, true);
  assert.deepEqual(positionals, ["--port"]);
});

Deno.test("parseFlags takes a negative number after a flag as its value", () => {
  const { values } = parseFlags(["--port", "-1", "-p", "-.5", "-s", "-3", "-d"], OPTIONS);
  assert.deepEqual({ ...values }, { port: "-1", period: "-.5", s: "-3", debug: true });
  // Not after a boolean flag, and not after a bare --.
  assert.equal(refusal(["-d", "-1"]), "unknown option '-1'");
  assert.deepEqual(parseFlags(["--", "--", "-1"], OPTIONS, { positionals: true }).positionals, [
    "-1",
  ]);
});

Deno.test("parseFlags says what is wrong in one line, in our words", () => {
  assert.equal(refusal(["--nope"]), "unknown option '--nope'");
  assert.equal(refusal(["-x"]), "unknown option '-x'");
  assert.equal(refusal(["--port"]), "option '--port' needs a value");
  assert.equal(refusal(["-p"]), "option '--period' needs a value");
  assert.equal(refusal(["-s"]), "option '-s' needs a value");
  assert.equal(refusal(["-p", "-d"]), "option '-p' needs a value");
  assert.equal(refusal(["--debug=yes"]), "option '--debug' takes no value");
  assert.equal(refusal(["stray"]), "unexpected argument 'stray'");
  assert.doesNotThrow(() => parseFlags(["stray"], OPTIONS, { positionals: true }));
});
