import assert from "node:assert/strict";
import { TokenFileError, TokenStore } from "../../bus/token_store.ts";
import { FakeClock } from "../fake_clock.ts";

async function tempFile(): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir();
  return {
    path: `${dir}/auth.json`,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("TokenStore add stores only the secret's hash, in a file of mode 0600", async () => {
  await using file = await tempFile();
  const clock = new FakeClock(Date.UTC(2026, 0, 2));
  const store = await TokenStore.load(file.path, { missingOk: true, clock });
  const secret = await store.add("alice", "producer");
  assert.match(secret, /^sched_[A-Za-z0-9_-]{43}$/);
  const text = await Deno.readTextFile(file.path);
  assert.ok(!text.includes(secret) && !text.includes(secret.slice(6)), "the secret is not stored");
  assert.deepEqual(JSON.parse(text), {
    version: 1,
    tokens: [{
      name: "alice",
      role: "producer",
      hash: `sha256:${await sha256Hex(secret)}`,
      createdAt: "2026-01-02T00:00:00.000Z",
    }],
  });
  assert.equal((await Deno.stat(file.path)).mode! & 0o777, 0o600);
  assert.deepEqual(store.list(), [
    { name: "alice", role: "producer", createdAt: "2026-01-02T00:00:00.000Z" },
  ]);
  const other = await store.add("bob", "scheduler");
  assert.notEqual(other, secret);
  assert.equal((await Deno.stat(file.path)).mode! & 0o777, 0o600);
});

Deno.test("TokenStore verify knows each secret and nothing else", async () => {
  await using file = await tempFile();
  const store = await TokenStore.load(file.path, { missingOk: true });
  const alice = await store.add("alice", "producer");
  const node = await store.add("node-a", "scheduler");
  const hash = `sha256:${await sha256Hex(alice)}`;
  assert.deepEqual(await store.verify(alice), { name: "alice", role: "producer", hash });
  assert.equal((await store.verify(node))?.name, "node-a");
  for (const wrong of ["", "sched_", `${alice}x`, alice.slice(0, -1), node.toUpperCase()]) {
    assert.equal(await store.verify(wrong), undefined, wrong);
  }
  const identity = (await store.verify(alice))!;
  assert.ok(store.holds(identity));
  // A fresh load of the file knows the same secrets.
  const again = await TokenStore.load(file.path);
  assert.equal((await again.verify(alice))?.role, "producer");
});

Deno.test("TokenStore revoke removes a token; a running store sees it within a second", async () => {
  await using file = await tempFile();
  const clock = new FakeClock();
  const cli = await TokenStore.load(file.path, { missingOk: true });
  const secret = await cli.add("alice", "producer");
  const bus = await TokenStore.load(file.path, { clock });
  const identity = (await bus.verify(secret))!;
  assert.equal(await cli.revoke("alice"), true);
  assert.equal(await cli.revoke("alice"), false);
  assert.equal(await bus.refresh(), false, "looked less than a second ago");
  assert.ok(bus.holds(identity));
  await clock.tick(1000);
  assert.equal(await bus.refresh(), true);
  assert.ok(!bus.holds(identity));
  assert.equal(await bus.verify(secret), undefined);
  // Added again under the same name: a new secret; the old identity does not hold.
  const renewed = await cli.add("alice", "producer");
  await clock.tick(1000);
  assert.equal((await bus.verify(renewed))?.name, "alice");
  assert.ok(!bus.holds(identity));
  assert.equal(await bus.verify(secret), undefined);
});

Deno.test("TokenStore add refuses a bad name, a taken name and an unknown role", async () => {
  await using file = await tempFile();
  const store = await TokenStore.load(file.path, { missingOk: true });
  await store.add("alice", "producer");
  await assert.rejects(() => store.add("alice", "monitor"), {
    name: "RangeError",
    message: /"alice" exists/,
  });
  await assert.rejects(() => store.add("a b", "monitor"), {
    name: "RangeError",
    message: /name must be 1\.\.64/,
  });
  await assert.rejects(() => store.add("x".repeat(65), "monitor"), {
    name: "RangeError",
    message: /1\.\.64/,
  });
  // deno-lint-ignore no-explicit-any
  await assert.rejects(() => store.add("carol", "king" as any), {
    name: "RangeError",
    message: /role must be one/,
  });
  assert.equal(store.list().length, 1);
});

Deno.test("TokenStore load says which file is missing, unreadable or corrupt, and why", async () => {
  await using file = await tempFile();
  await assert.rejects(() => TokenStore.load(file.path), {
    name: "TokenFileError",
    message:
      /^Cannot load tokens from .*auth\.json: no such file \(make one with: deno task bus -- token add/,
  });
  await assert.rejects(() => TokenStore.load(file.path), TokenFileError);
  const hash = `sha256:${"ab".repeat(32)}`;
  const token = { name: "a", role: "producer", hash, createdAt: "x" };
  const cases: [string, RegExp][] = [
    ["{nope", /not JSON/],
    ["[]", /not a token file/],
    [JSON.stringify({ version: 2, tokens: [] }), /not a token file/],
    [JSON.stringify({ version: 1, tokens: [1] }), /tokens\[0\] must be an object/],
    [JSON.stringify({ version: 1, tokens: [{ ...token, name: "a/b" }] }), /tokens\[0\]\.name/],
    [
      JSON.stringify({ version: 1, tokens: [token, token] }),
      /tokens\[1\]\.name "a" is there twice/,
    ],
    [JSON.stringify({ version: 1, tokens: [{ ...token, role: "root" }] }), /tokens\[0\]\.role/],
    [JSON.stringify({ version: 1, tokens: [{ ...token, hash: "md5:00" }] }), /tokens\[0\]\.hash/],
    [JSON.stringify({ version: 1, tokens: [{ ...token, createdAt: 1 }] }), /createdAt/],
  ];
  for (const [text, reason] of cases) {
    await Deno.writeTextFile(file.path, text);
    await assert.rejects(() => TokenStore.load(file.path), {
      name: "TokenFileError",
      message: reason,
    });
  }
  await Deno.writeTextFile(file.path, JSON.stringify({ version: 1, tokens: [token] }));
  assert.deepEqual((await TokenStore.load(file.path)).list(), [
    { name: "a", role: "producer", createdAt: "x" },
  ]);
});

Deno.test("TokenStore keeps the tokens last read when the file turns corrupt", async () => {
  await using file = await tempFile();
  const clock = new FakeClock();
  const store = await TokenStore.load(file.path, { missingOk: true, clock });
  const secret = await store.add("alice", "admin");
  await Deno.writeTextFile(file.path, "{broken");
  await clock.tick(1000);
  await assert.rejects(() => store.refresh(), { name: "TokenFileError", message: /not JSON/ });
  assert.equal((await store.verify(secret))?.name, "alice");
});
