import assert from "node:assert/strict";
import {
  encodeMessage,
  isFinalBusState,
  isJobId,
  isPriority,
  validatePayload,
} from "../../bus/protocol.ts";
import { parseClientMessage } from "../../bus/client_message.ts";
import { parseServerMessage, validateServerMessage } from "../../bus/server_message.ts";

const job = (payload: unknown, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ cmd: "job_request", ...extra, payload });

Deno.test("parseClientMessage rejects every kind of bad input with a reason naming it", () => {
  const cases: [string, RegExp][] = [
    ["not json at all", /not JSON/],
    ["", /not JSON/],
    ["[1,2]", /must be a JSON object, got an array/],
    ["42", /must be a JSON object, got 42/],
    ['"register"', /must be a JSON object/],
    ["null", /must be a JSON object, got null/],
    ["{}", /missing 'cmd'/],
    ['{"cmd":7}', /unknown cmd 7/],
    ['{"cmd":"launch"}', /unknown cmd "launch"/],
    ['{"cmd":"register"}', /missing 'type'/],
    ['{"cmd":"register","type":"consumer"}', /unknown role "consumer"/],
    ['{"cmd":"register","type":"producer","protocol":3}', /unsupported protocol 3/],
    ['{"cmd":"register","type":"monitor"}', /monitor needs protocol 2/],
    ['{"cmd":"register","type":"scheduler","protocol":2}', /needs 'slots'/],
    ['{"cmd":"register","type":"scheduler","protocol":2,"slots":0}', /needs 'slots'.*got 0/],
    ['{"cmd":"register","type":"scheduler","protocol":2,"slots":1.5}', /needs 'slots'/],
    ['{"cmd":"register","type":"scheduler","protocol":2,"slots":1,"running":"a"}', /'running'/],
    ['{"cmd":"register","type":"scheduler","protocol":2,"slots":1,"running":[""]}', /'running'/],
    ['{"cmd":"register","type":"producer","protocol":2,"name":""}', /name must be/],
    ['{"cmd":"job_request"}', /missing 'payload'/],
    [job(5), /payload must be an object, got 5/],
    [job([]), /payload must be an object, got an array/],
    [job({ runtime: 1 }), /missing 'priority'/],
    [job({ priority: 99, runtime: 1 }), /priority must be an integer 0..10, got 99/],
    [job({ priority: -1, runtime: 1 }), /got -1/],
    [job({ priority: 2.5, runtime: 1 }), /got 2.5/],
    [job({ priority: "3", runtime: 1 }), /got "3"/],
    [job({ priority: 3 }), /runtime must be a positive finite number.*got undefined/],
    [job({ priority: 3, runtime: 0 }), /runtime.*got 0/],
    [job({ priority: 3, runtime: -2 }), /runtime.*got -2/],
    [job({ priority: 3, runtime: "5" }), /runtime.*got "5"/],
    [job({ priority: 3, runtime: null }), /runtime.*got null/],
    [job({ priority: 3, runtime: 1 }, { id: "" }), /id must be a string of 1..128/],
    [job({ priority: 3, runtime: 1 }, { id: "x".repeat(129) }), /id must be/],
    [job({ priority: 3, runtime: 1 }, { id: 12 }), /id must be.*got 12/],
    ['{"cmd":"cancel"}', /cancel: missing 'id'/],
    ['{"cmd":"set_priority","id":"a"}', /set_priority: missing 'priority'/],
    ['{"cmd":"set_priority","id":"a","priority":11}', /got 11/],
    ['{"cmd":"event","id":"a"}', /event: unknown state undefined/],
    ['{"cmd":"event","id":"a","state":"exploded"}', /unknown state "exploded"/],
    ['{"cmd":"event","id":"a","state":"started","at":"now"}', /'at' must be epoch/],
    ['{"cmd":"event","id":"a","state":"failed","result":3}', /'result' must be an object/],
    ['{"cmd":"event","id":"a","state":"failed","reason":3}', /'reason' must be a string/],
    ['{"cmd":"event","id":"a","state":"evicted","requeue":"no"}', /'requeue' must be a boolean/],
  ];
  for (const [text, reason] of cases) {
    const result = parseClientMessage(text);
    assert.equal(result.ok, false, `accepted: ${text}`);
    if (!result.ok) assert.match(result.reason, reason, `for ${text}`);
  }
});

Deno.test("parseClientMessage names the op and the id of a bad request when it can", () => {
  const result = parseClientMessage(job({ priority: 12, runtime: 1 }, { id: "j-1" }));
  assert.deepEqual(result, {
    ok: false,
    op: "job_request",
    id: "j-1",
    reason: "priority must be an integer 0..10, got 12",
  });
  const cancel = parseClientMessage('{"cmd":"set_priority","id":"j-2","priority":"x"}');
  assert.equal(!cancel.ok && cancel.op, "set_priority");
  assert.equal(!cancel.ok && cancel.id, "j-2");
});

Deno.test("parseClientMessage accepts the seed's messages unchanged", () => {
  assert.deepEqual(parseClientMessage('{"cmd":"register","type":"producer"}'), {
    ok: true,
    message: { cmd: "register", type: "producer", protocol: 1 },
  });
  assert.deepEqual(parseClientMessage('{"cmd":"register","type":"scheduler"}'), {
    ok: true,
    message: { cmd: "register", type: "scheduler", protocol: 1 },
  });
  const request = parseClientMessage(job({ priority: 0, runtime: 3.5, tag: "x" }));
  assert.deepEqual(request, {
    ok: true,
    message: { cmd: "job_request", payload: { priority: 0, runtime: 3.5, tag: "x" } },
  });
});

Deno.test("parseClientMessage accepts protocol 2 messages and keeps only known fields", () => {
  const ok = (text: string): unknown => {
    const result = parseClientMessage(text);
    assert.ok(result.ok, text);
    return result.message;
  };
  assert.deepEqual(
    ok(
      '{"cmd":"register","type":"scheduler","protocol":2,"name":"a","slots":3,"running":["x","x","y"],"junk":1}',
    ),
    { cmd: "register", type: "scheduler", protocol: 2, name: "a", slots: 3, running: ["x", "y"] },
  );
  assert.deepEqual(ok('{"cmd":"register","type":"monitor","protocol":2}'), {
    cmd: "register",
    type: "monitor",
    protocol: 2,
  });
  assert.deepEqual(ok(job({ priority: 10, runtime: 1 }, { id: "x".repeat(128) })), {
    cmd: "job_request",
    id: "x".repeat(128),
    payload: { priority: 10, runtime: 1 },
  });
  assert.deepEqual(ok('{"cmd":"cancel","id":"a"}'), { cmd: "cancel", id: "a" });
  assert.deepEqual(ok('{"cmd":"set_priority","id":"a","priority":0}'), {
    cmd: "set_priority",
    id: "a",
    priority: 0,
  });
  assert.deepEqual(
    ok('{"cmd":"event","id":"a","state":"succeeded","at":5,"result":{"code":0},"reason":"done"}'),
    { cmd: "event", id: "a", state: "succeeded", at: 5, result: { code: 0 }, reason: "done" },
  );
  assert.deepEqual(ok('{"cmd":"event","id":"a","state":"evicted","requeue":false}'), {
    cmd: "event",
    id: "a",
    state: "evicted",
    requeue: false,
  });
  assert.deepEqual(ok('{"cmd":"event","id":"a","state":"started","requeue":false}'), {
    cmd: "event",
    id: "a",
    state: "started",
  });
});

Deno.test("validatePayload, isPriority, isJobId, isFinalBusState and encodeMessage", () => {
  assert.equal(validatePayload(undefined).ok, false);
  assert.equal(validatePayload({ priority: 0, runtime: Infinity }).ok, false);
  assert.equal(validatePayload({ priority: 0, runtime: NaN }).ok, false);
  assert.equal(isPriority(0) && isPriority(10), true);
  assert.equal(isPriority(NaN) || isPriority("1") || isPriority(11), false);
  assert.equal(isJobId("a") && !isJobId(null), true);
  assert.deepEqual(
    ["queued", "started", "evicted", "requeued", "succeeded", "delivered"].map((s) =>
      isFinalBusState(s as "queued")
    ),
    [false, false, false, false, true, true],
  );
  assert.equal(
    encodeMessage({ cmd: "ack", op: "cancel", id: "a" }),
    '{"cmd":"ack","op":"cancel","id":"a"}',
  );
});

Deno.test("parseClientMessage accepts drain", () => {
  assert.deepEqual(parseClientMessage('{"cmd":"drain"}'), { ok: true, message: { cmd: "drain" } });
});

Deno.test("validatePayload sends a payload with `command` through the command job's rules", () => {
  const reason = (payload: unknown): string => {
    const result = validatePayload(payload);
    assert.ok(!result.ok, JSON.stringify(payload));
    return result.reason;
  };
  const spec = {
    priority: 3,
    command: ["sh", "-c", "echo hi; sleep 1"],
    name: "render",
    cwd: "/tmp",
    env: { FOO: "1" },
    timeout: 60,
    grace: 5,
    requires: { gpu: "a100" },
    retries: 2,
    follow: true,
  };
  assert.deepEqual(validatePayload(spec), { ok: true, message: spec });
  assert.equal(
    reason({ priority: 3, command: ["sh"], runtime: 2 }),
    "a command job takes no 'runtime'",
  );
  assert.equal(
    reason({ priority: 3, command: [] }),
    "command must be a non-empty array of strings, got an array",
  );
  assert.equal(reason({ priority: 3, command: [""] }), "command[0] must not be empty");
  assert.equal(
    reason({ priority: 3, command: ["a", "b", "c", 7] }),
    "command[3] must be a string, got 7",
  );
  assert.equal(
    reason({ priority: 11, command: ["a"] }),
    "priority must be an integer 0..10, got 11",
  );
  assert.equal(
    reason({ priority: 1, command: ["a"], cwd: "tmp" }),
    'cwd must be an absolute path, got "tmp"',
  );
  assert.equal(
    reason({ priority: 1, command: ["a"], retries: 101 }),
    "retries must be an integer 0..100, got 101",
  );
  assert.match(
    reason({ priority: 1, command: ["a"], requires: { "a b": "1" } }),
    /^requires: name "a b"/,
  );
  assert.match(reason({ priority: 1, command: null }), /^command must be a non-empty array/);
  // A sleeper job keeps its rules; its `requires`, if any, follows the labels' rules.
  assert.equal(validatePayload({ priority: 1, runtime: 2, requires: { gpu: "a100" } }).ok, true);
  assert.match(
    reason({ priority: 1, runtime: 2, requires: ["gpu"] }),
    /^requires must be an object/,
  );
  assert.match(reason({ priority: 1 }), /^runtime must be a positive finite number/);
});

Deno.test("parseClientMessage takes a v2 scheduler's labels and allow-list, each error specific", () => {
  const register = (extra: Record<string, unknown>) =>
    parseClientMessage(
      JSON.stringify({ cmd: "register", type: "scheduler", protocol: 2, slots: 2, ...extra }),
    );
  assert.deepEqual(register({ labels: { gpu: "a100", os: "linux" }, commands: ["ffmpeg", "*"] }), {
    ok: true,
    message: {
      cmd: "register",
      type: "scheduler",
      protocol: 2,
      slots: 2,
      labels: { gpu: "a100", os: "linux" },
      commands: ["ffmpeg", "*"],
    },
  });
  assert.deepEqual(register({ labels: { "gpu type": "a100" } }), {
    ok: false,
    op: "register",
    reason: `register: labels: name "gpu type" must be 1..64 letters, digits, '_', '.' or '-'`,
  });
  assert.deepEqual(register({ labels: { gpu: 1 } }), {
    ok: false,
    op: "register",
    reason: "register: labels.gpu must be a string of at most 128 printable characters, got 1",
  });
  assert.deepEqual(register({ commands: ["bin/x"] }), {
    ok: false,
    op: "register",
    reason:
      `register: commands[0] must be a name without '/', an absolute path or '*', got "bin/x"`,
  });
  assert.deepEqual(register({ commands: "ffmpeg" }), {
    ok: false,
    op: "register",
    reason: 'register: commands must be an array of strings, got "ffmpeg"',
  });
  const empty = register({ commands: [], labels: {} });
  assert.ok(empty.ok);
  assert.deepEqual(empty.message, {
    cmd: "register",
    type: "scheduler",
    protocol: 2,
    slots: 2,
    labels: {},
    commands: [],
  });
});

Deno.test("parseServerMessage keeps a job's attempt and checks it", () => {
  const job = (extra: Record<string, unknown>): string =>
    JSON.stringify({ cmd: "job", id: "j", payload: { priority: 1, command: ["true"] }, ...extra });
  assert.deepEqual(parseServerMessage(job({ attempt: 2 })), {
    ok: true,
    message: { cmd: "job", id: "j", payload: { priority: 1, command: ["true"] }, attempt: 2 },
  });
  assert.equal(parseServerMessage(job({})).ok, true);
  assert.deepEqual(parseServerMessage(job({ attempt: 0 })), {
    ok: false,
    reason: "job: 'attempt' must be an integer >= 1, got 0",
  });
});

Deno.test("parseClientMessage parses list, show and output, with a reason for each bad field", () => {
  const ok = (text: string): unknown => {
    const parsed = parseClientMessage(text);
    assert.ok(parsed.ok, parsed.ok ? "" : parsed.reason);
    return parsed.message;
  };
  assert.deepEqual(ok('{"cmd":"list"}'), { cmd: "list" });
  assert.deepEqual(
    ok('{"cmd":"list","states":["queued","started","queued"],"name":"x","owner":"o","limit":7}'),
    { cmd: "list", states: ["queued", "started"], name: "x", owner: "o", limit: 7 },
  );
  assert.deepEqual(ok('{"cmd":"show","id":"j-1"}'), { cmd: "show", id: "j-1" });
  assert.deepEqual(ok('{"cmd":"output","id":"j","stream":"stderr","data":"","dropped":9}'), {
    cmd: "output",
    id: "j",
    stream: "stderr",
    data: "",
    dropped: 9,
  });
  const cases: [object, RegExp][] = [
    [{ cmd: "list", states: [] }, /^list: 'states' must be a non-empty array of job states/],
    [{ cmd: "list", states: "queued" }, /'states' must be.*got "queued"/],
    [{ cmd: "list", states: ["runing"] }, /^list: unknown state "runing" \(queued, started/],
    [{ cmd: "list", name: "" }, /^list: 'name' must be a string of 1..128 characters, got ""/],
    [{ cmd: "list", owner: 3 }, /^list: 'owner' must be a string.*got 3/],
    [{ cmd: "list", limit: 0 }, /^list: 'limit' must be an integer 1..10000, got 0$/],
    [{ cmd: "list", limit: 10_001 }, /got 10001/],
    [{ cmd: "list", limit: 2.5 }, /got 2.5/],
    [{ cmd: "list", limit: "5" }, /got "5"/],
    [{ cmd: "show" }, /^show: missing 'id'$/],
    [{ cmd: "show", id: "" }, /^show: id must be a string of 1..128/],
    [{ cmd: "output", stream: "stdout", data: "x" }, /^output: missing 'id'$/],
    [{ cmd: "output", id: "j", data: "x" }, /^output: 'stream' must be "stdout" or "stderr"/],
    [{ cmd: "output", id: "j", stream: "out", data: "x" }, /got "out"/],
    [{ cmd: "output", id: "j", stream: "stdout" }, /^output: 'data' must be a string, got/],
    [{ cmd: "output", id: "j", stream: "stdout", data: "", dropped: -1 }, /'dropped' must be/],
  ];
  for (const [message, reason] of cases) {
    const parsed = parseClientMessage(JSON.stringify(message));
    assert.equal(parsed.ok, false, JSON.stringify(message));
    if (!parsed.ok) {
      assert.match(parsed.reason, reason);
      assert.equal(parsed.op, message["cmd" as keyof typeof message]);
    }
  }
});

Deno.test("parseServerMessage validates jobs, job_info and output", () => {
  const summary = {
    id: "j",
    priority: 3,
    state: "started",
    owner: "ann",
    scheduler: "n1",
    submittedAt: 1,
    startedAt: 2,
    attempts: 1,
  };
  const jobs = { cmd: "jobs", jobs: [summary, { ...summary, id: "k", waiting: "why" }], total: 5 };
  assert.deepEqual(validateServerMessage(jobs), { ok: true, message: jobs });
  const details = {
    ...summary,
    payload: { priority: 3, command: ["true"] },
    result: { exitCode: 0 },
    history: [{ state: "queued", at: 1 }, { state: "started", at: 2, scheduler: "n1" }],
  };
  const info = { cmd: "job_info", job: details };
  assert.deepEqual(validateServerMessage(info), { ok: true, message: info });
  const output = { cmd: "output", id: "j", stream: "stdout", data: "hi\n" };
  assert.deepEqual(validateServerMessage(output), { ok: true, message: output });
  const bad: [object, RegExp][] = [
    [{ cmd: "jobs", jobs: [], total: -1 }, /^jobs: 'total' must be an integer >= 0, got -1$/],
    [{ cmd: "jobs", total: 0 }, /^jobs: missing 'jobs'$/],
    [{ cmd: "jobs", jobs: {}, total: 0 }, /^jobs: 'jobs' must be an array/],
    [{ cmd: "jobs", jobs: [summary, 3], total: 2 }, /^jobs: jobs\[1\] must be an object, got 3/],
    [
      { cmd: "jobs", jobs: [{ ...summary, state: "x" }], total: 1 },
      /^jobs: jobs\[0\]: 'state' must be a job state, got "x"/,
    ],
    [{ cmd: "jobs", jobs: [{ ...summary, attempts: undefined }], total: 1 }, /missing 'attempts'/],
    [{ cmd: "job_info", job: 3 }, /^job_info: 'job' must be an object, got 3/],
    [{ cmd: "job_info", job: { ...details, payload: undefined } }, /missing 'payload'/],
    [
      { cmd: "job_info", job: { ...details, history: [{ state: "queued" }] } },
      /^job_info: history\[0\]: missing 'at'/,
    ],
    [{ cmd: "output", id: "j", stream: "both", data: "" }, /'stream' must be stdout or stderr/],
    [{ cmd: "output", id: "j", stream: "stdout", data: 1 }, /'data' must be a string/],
  ];
  for (const [message, reason] of bad) {
    const parsed = validateServerMessage(message);
    assert.equal(parsed.ok, false, JSON.stringify(message));
    if (!parsed.ok) assert.match(parsed.reason, reason);
  }
});
