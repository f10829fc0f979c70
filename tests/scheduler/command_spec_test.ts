import assert from "node:assert/strict";
import {
  allowsCommand,
  isCommandPayload,
  labelsMatch,
  validateAllowList,
  validateCommandSpec,
  validateLabels,
} from "../../scheduler/command_spec.ts";
import { resultExitCode } from "../../scheduler/job_result.ts";

const base = { priority: 3, command: ["sh", "-c", "echo hi"] };

Deno.test("validateCommandSpec accepts a full spec and keeps extra fields", () => {
  const spec = {
    ...base,
    name: "render",
    cwd: "/tmp",
    env: { FOO: "1", _X2: "" },
    timeout: 60,
    grace: 0,
    requires: { gpu: "a100", "os.kind": "linux" },
    retries: 2,
    follow: true,
    tag: { any: "thing" },
  };
  const checked = validateCommandSpec(spec);
  assert.ok(checked.ok);
  assert.deepEqual(checked.value, spec);
  assert.ok(isCommandPayload(spec));
  assert.ok(!isCommandPayload({ priority: 1, runtime: 2 }));
});

Deno.test("validateCommandSpec answers each bad field with its own reason", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ command: ["x"] }, "missing 'priority'"],
    [{ priority: 11, command: ["x"] }, "priority must be an integer 0..10, got 11"],
    [{ priority: 1, command: [] }, "command must be a non-empty array of strings, got an array"],
    [
      { priority: 1, command: "ls -l" },
      'command must be a non-empty array of strings, got "ls -l"',
    ],
    [{ priority: 1, command: [""] }, "command[0] must not be empty"],
    [{ priority: 1, command: ["ls", 7] }, "command[1] must be a string, got 7"],
    [{ priority: 1, command: ["ls", "a\0b"] }, "command[1] must not contain a NUL character"],
    [{ ...base, runtime: 3 }, "a command job takes no 'runtime'"],
    [{ ...base, name: "" }, 'name must be 1..128 printable characters, got ""'],
    [{ ...base, name: "a\nb" }, 'name must be 1..128 printable characters, got "a\\nb"'],
    [{ ...base, cwd: "tmp" }, 'cwd must be an absolute path, got "tmp"'],
    [{ ...base, env: ["A=1"] }, "env must be an object of strings, got an array"],
    [
      { ...base, env: { "1X": "a" } },
      `env: name "1X" must be letters, digits and '_', not starting with a digit`,
    ],
    [{ ...base, env: { X: 1 } }, "env.X must be a string, got 1"],
    [{ ...base, timeout: 0 }, "timeout must be a number of seconds > 0, got 0"],
    [{ ...base, timeout: "5" }, 'timeout must be a number of seconds > 0, got "5"'],
    [{ ...base, grace: -1 }, "grace must be a number of seconds >= 0 and <= 3600, got -1"],
    [{ ...base, requires: "gpu" }, 'requires must be an object of strings, got "gpu"'],
    [
      { ...base, requires: { "a b": "x" } },
      `requires: name "a b" must be 1..64 letters, digits, '_', '.' or '-'`,
    ],
    [
      { ...base, requires: { gpu: 1 } },
      "requires.gpu must be a string of at most 128 printable characters, got 1",
    ],
    [{ ...base, retries: 1.5 }, "retries must be an integer 0..100, got 1.5"],
    [{ ...base, retries: 101 }, "retries must be an integer 0..100, got 101"],
    [{ ...base, follow: "yes" }, 'follow must be true or false, got "yes"'],
  ];
  for (const [payload, reason] of cases) {
    const checked = validateCommandSpec(payload);
    assert.ok(!checked.ok, JSON.stringify(payload));
    assert.equal(checked.reason, reason);
  }
});

Deno.test("labels and allow-lists validate, and match jobs to schedulers", () => {
  assert.deepEqual(validateLabels("labels", undefined), { ok: true, value: {} });
  assert.ok(!validateLabels("labels", { gpu: "x".repeat(129) }).ok);
  assert.deepEqual(validateAllowList(undefined), { ok: true, value: [] });
  assert.ok(validateAllowList(["*", "ffmpeg", "/usr/bin/python3"]).ok);
  assert.ok(!validateAllowList("ffmpeg").ok);
  assert.ok(!validateAllowList(["./run.sh"]).ok);
  assert.ok(allowsCommand(["*"], "/any/thing"));
  assert.ok(allowsCommand(["python3"], "python3"));
  assert.ok(!allowsCommand(["python3"], "/tmp/evil/python3"), "a name is not a basename match");
  assert.ok(!allowsCommand([], "true"), "no allow-list: no command jobs");
  assert.ok(labelsMatch({}, undefined));
  assert.ok(labelsMatch({ gpu: "a100", os: "linux" }, { gpu: "a100" }));
  assert.ok(!labelsMatch({ gpu: "h100" }, { gpu: "a100" }));
  assert.ok(!labelsMatch({}, { gpu: "a100" }));
});

Deno.test("resultExitCode: the job's code, or 128 + the signal's number", () => {
  assert.equal(resultExitCode({ exitCode: 0, signal: null }), 0);
  assert.equal(resultExitCode({ exitCode: null, signal: "SIGTERM" }), 143);
  assert.equal(resultExitCode({ exitCode: null, signal: "SIGKILL" }), 137);
  assert.equal(resultExitCode({ exitCode: null, signal: null }), undefined);
});
