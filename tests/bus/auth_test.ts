import assert from "node:assert/strict";
import { type AuthResult, BusAuth, presentedToken, registerRefusal } from "../../bus/auth.ts";
import { TokenStore } from "../../bus/token_store.ts";
import { FakeClock } from "../fake_clock.ts";

async function withStore(
  test: (store: TokenStore, clock: FakeClock) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const clock = new FakeClock();
    await test(await TokenStore.load(`${dir}/auth.json`, { missingOk: true, clock }), clock);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const upgrade = { upgrade: true } as const;
const bearer = (secret: string): Request =>
  new Request("http://127.0.0.1/", { headers: { authorization: `Bearer ${secret}` } });

async function refusal(result: AuthResult): Promise<[number, unknown]> {
  assert.ok(!result.ok, "refused");
  return [result.response.status, await result.response.json()];
}

function base64url(text: string): string {
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

Deno.test("BusAuth takes a Bearer header or a bearer.<base64url> subprotocol", async () => {
  await withStore(async (store) => {
    const secret = await store.add("alice", "producer");
    await using auth = new BusAuth(store);
    const header = await auth.authenticate(bearer(secret), "127.0.0.1", upgrade);
    assert.ok(header.ok);
    assert.equal(header.identity?.name, "alice");
    assert.equal(header.protocol, undefined);
    const browser = new Request("http://127.0.0.1/", {
      headers: { "sec-websocket-protocol": `sched.v2, bearer.${base64url(secret)}` },
    });
    const sub = await auth.authenticate(browser, "127.0.0.1", upgrade);
    assert.ok(sub.ok);
    assert.deepEqual([sub.identity?.name, sub.identity?.role, sub.protocol], [
      "alice",
      "producer",
      "sched.v2",
    ]);
  });
});

Deno.test("BusAuth answers a missing or unknown token 401, and logs once per address", async () => {
  await withStore(async (store) => {
    await store.add("alice", "producer");
    const lines: string[] = [];
    await using auth = new BusAuth(store, { onWarning: (line) => lines.push(line) });
    const missing = await auth.authenticate(new Request("http://x/"), "10.0.0.1", upgrade);
    assert.deepEqual(await refusal(missing), [401, { error: "missing token" }]);
    assert.ok(
      !missing.ok && missing.response.headers.get("www-authenticate")?.startsWith("Bearer"),
    );
    const unknown = await auth.authenticate(bearer("sched_nope"), "10.0.0.1", upgrade);
    assert.deepEqual(await refusal(unknown), [401, { error: "unknown token" }]);
    const garbled = new Request("http://x/", {
      headers: { "sec-websocket-protocol": "bearer.%%" },
    });
    assert.deepEqual(await refusal(await auth.authenticate(garbled, "10.0.0.1", upgrade)), [
      401,
      { error: "unknown token" },
    ]);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /^auth: missing token from 10\.0\.0\.1 \(401; more failures/);
    await auth.authenticate(new Request("http://x/"), "10.0.0.2", upgrade);
    assert.equal(lines.length, 2);
  });
});

Deno.test("BusAuth answers 429 after 10 failures within 60 s, for the rest of the minute", async () => {
  await withStore(async (store, clock) => {
    const secret = await store.add("alice", "producer");
    await using auth = new BusAuth(store, { clock });
    for (let i = 0; i < 10; i++) {
      const result = await auth.authenticate(bearer(`sched_guess${i}`), "10.0.0.9", upgrade);
      assert.equal((await refusal(result))[0], 401, `attempt ${i + 1}`);
      await clock.tick(1000);
    }
    const limited = await auth.authenticate(bearer(secret), "10.0.0.9", upgrade);
    assert.ok(!limited.ok);
    assert.equal(limited.response.status, 429);
    assert.equal(limited.response.headers.get("retry-after"), "50");
    assert.match(
      (await limited.response.json()).error,
      /too many failed attempts from 10\.0\.0\.9/,
    );
    // Another address is not limited.
    assert.ok((await auth.authenticate(bearer(secret), "10.0.0.8", upgrade)).ok);
    await clock.tick(49_000);
    assert.equal(
      (await refusal(await auth.authenticate(bearer(secret), "10.0.0.9", upgrade)))[0],
      429,
    );
    await clock.tick(1000); // 60 s after the first failure
    assert.ok((await auth.authenticate(bearer(secret), "10.0.0.9", upgrade)).ok);
  });
});

Deno.test("BusAuth lets a read endpoint need roles, and seed clients in only when allowed", async () => {
  await withStore(async (store) => {
    const alice = await store.add("alice", "producer");
    const watcher = await store.add("watcher", "monitor");
    const root = await store.add("root", "admin");
    const status = { upgrade: false, roles: ["monitor", "admin"] } as const;
    await using auth = new BusAuth(store);
    assert.deepEqual(await refusal(await auth.authenticate(bearer(alice), "h", status)), [
      401,
      { error: "needs a monitor or admin token, got producer" },
    ]);
    assert.ok((await auth.authenticate(bearer(watcher), "h", status)).ok);
    assert.ok((await auth.authenticate(bearer(root), "h", status)).ok);
    assert.equal(
      (await refusal(await auth.authenticate(new Request("http://x/"), "h", upgrade)))[0],
      401,
    );
    await using seeds = new BusAuth(store, { allowSeedClients: true });
    const seed = await seeds.authenticate(new Request("http://x/"), "h", upgrade);
    assert.ok(seed.ok && seed.identity === undefined);
    // Not for a read endpoint, and a wrong token is still wrong.
    assert.equal(
      (await refusal(await seeds.authenticate(new Request("http://x/"), "h", status)))[0],
      401,
    );
    assert.equal(
      (await refusal(await seeds.authenticate(bearer("sched_x"), "h", upgrade)))[0],
      401,
    );
  });
});

Deno.test("BusAuth watch calls back once the token file changed", async () => {
  await withStore(async (store, clock) => {
    await store.add("alice", "producer");
    const other = await TokenStore.load(store.path);
    let changes = 0;
    await using auth = new BusAuth(store, { clock });
    auth.watch(() => changes++);
    await clock.tick(1000);
    assert.equal(changes, 0);
    await other.revoke("alice");
    for (let i = 0; i < 500 && changes === 0; i++) { // the look at the file is real I/O
      await clock.tick(1000);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(changes, 1);
  });
});

Deno.test("presentedToken and registerRefusal", () => {
  assert.deepEqual(presentedToken(new Headers({ authorization: "bearer  abc " })), {
    secret: "abc",
    protocol: undefined,
  });
  assert.deepEqual(presentedToken(new Headers({ authorization: "Basic abc" })), {
    secret: undefined,
    protocol: undefined,
  });
  assert.deepEqual(presentedToken(new Headers({ "sec-websocket-protocol": "sched.v2" })), {
    secret: undefined,
    protocol: "sched.v2",
  });
  const id = (role: "producer" | "scheduler" | "monitor" | "admin") => ({
    name: "t",
    role,
    hash: "sha256:0",
  });
  assert.equal(registerRefusal(id("producer"), "producer", 2), undefined);
  assert.equal(registerRefusal(id("producer"), "producer", 1), undefined);
  assert.equal(
    registerRefusal(id("producer"), "scheduler", 2),
    "token t (producer) may not register as scheduler: not allowed for role producer",
  );
  assert.match(registerRefusal(id("producer"), "monitor", 2)!, /not allowed for role producer/);
  assert.match(registerRefusal(id("scheduler"), "producer", 2)!, /not allowed for role scheduler/);
  assert.match(registerRefusal(id("monitor"), "scheduler", 2)!, /not allowed for role monitor/);
  for (const type of ["producer", "scheduler", "monitor"] as const) {
    assert.equal(registerRefusal(id("admin"), type, 2), undefined);
  }
  assert.equal(registerRefusal(undefined, "producer", 1), undefined);
  assert.match(
    registerRefusal(undefined, "producer", 2)!,
    /without a token .* only with protocol 1/,
  );
});
