/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by npm:puppeteer-core)
 * against a real bus, a real SchedulerClient running command jobs and a real Producer: the page's
 * counts match `/status`, a job's page shows its output, cancel works with an admin token and the
 * page is read-only with a monitor token, and the page comes back by itself after the bus
 * restarts on the same port. Without Chromium these tests are ignored, with a printed line.
 *
 * `DASHBOARD_SCREENSHOT=docs/dashboard.png` saves the page with jobs flowing.
 */

import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { BusServer } from "../../bus/server.ts";
import { SchedulerClient } from "../../bus/scheduler_client.ts";
import { TokenStore } from "../../bus/token_store.ts";
import { Producer } from "../../producer/producer.ts";
import { commandLauncher } from "../../scheduler/command_launcher.ts";
import { jobLauncher } from "../../scheduler/job_launcher.ts";
import { until } from "../fixtures/e2e_cli.ts";
import { TcpRelay } from "../fixtures/tcp_relay.ts";
import { CHROMIUM, HeadlessBrowser } from "./browser.ts";

const ignore = CHROMIUM === undefined;

/** A bus with `--auth` and the four tokens the tests use. */
async function securedBus(): Promise<{
  bus: BusServer;
  port: number;
  tokens: Record<"admin" | "monitor" | "scheduler" | "producer", string>;
  dir: string;
}> {
  const dir = await Deno.makeTempDir({ prefix: "dashboard-" });
  const store = await TokenStore.load(`${dir}/auth.json`, { missingOk: true });
  const tokens = {
    admin: await store.add("root", "admin"),
    monitor: await store.add("watcher", "monitor"),
    scheduler: await store.add("node-a", "scheduler"),
    producer: await store.add("alice", "producer"),
  };
  const bus = new BusServer({ port: 0, pingTimeoutMs: 0, auth: store });
  return { bus, port: bus.listen().port, tokens, dir };
}

/** A scheduler that runs command jobs for real. */
function scheduler(url: string, slots: number, token?: string): SchedulerClient {
  const client = new SchedulerClient(url, {
    name: "node-a",
    slots,
    evict: "requeue",
    commands: ["*"],
    launch: jobLauncher({ command: commandLauncher() }),
    backoff: { initialMs: 20, maxMs: 200 },
    ...(token === undefined ? {} : { token }),
  });
  client.start();
  return client;
}

function producer(url: string, token?: string): Producer {
  const client = new Producer(url, {
    name: "alice",
    protocol: 2,
    backoff: { initialMs: 20, maxMs: 200 },
    ...(token === undefined ? {} : { token }),
  });
  client.start();
  return client;
}

/** The text of the element `selector`, "" when it is not there. */
async function text(page: Page, selector: string): Promise<string> {
  return String(
    await page.evaluate(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ""`),
  );
}

/** Waits until the element's text passes `check` (the page keeps changing meanwhile). */
async function waitText(
  page: Page,
  selector: string,
  check: (value: string) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<string> {
  const end = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < end) {
    last = await text(page, selector);
    if (check(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}: ${selector} is ${JSON.stringify(last)}`);
}

/** Opens the page and gives it `token` through its token form. */
async function openWithToken(page: Page, port: number, token: string): Promise<void> {
  await page.goto(`http://127.0.0.1:${port}/`);
  await waitText(page, "#conn", (t) => t === "token needed", "the page to ask for a token");
  await page.type("#token-input", token);
  await page.click("#token-save");
  await waitText(page, "#conn", (t) => t === "live", "the page to connect");
}

/** The counts a person reads on the overview equal the bus's /status. */
async function countsMatchStatus(
  page: Page,
  bus: BusServer,
  waiting: number,
  running: number,
): Promise<void> {
  await until("the bus's queue and running jobs", () => {
    const status = bus.status();
    const busy = status.schedulers.reduce((n, s) => n + s.running.length, 0);
    return status.queue.length === waiting && busy === running;
  });
  await waitText(page, "#waiting-total", (t) => t === String(waiting), "waiting count");
  await waitText(page, "#running-total", (t) => t === String(running), "running count");
  const status = bus.status();
  assert.equal(await text(page, "#waiting-total"), String(status.queue.length));
  for (const [priority, count] of Object.entries(status.queue.byPriority)) {
    const shown = await text(page, `#waiting-by-priority [data-k="priority ${priority}"]`);
    assert.equal(shown, String(count));
  }
}

/**
 * Shows a tab of the page as a person's click on its link does: a change of the location's hash
 * in the same document (`page.goto` with a new hash may load the page again, and the steps after
 * it could then act on the old document).
 */
async function showTab(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => {
    (globalThis as unknown as { location: { hash: string } }).location.hash = h;
  }, hash);
}

/**
 * Clicks an element in the page in one step: the live page re-renders rows as events come, so a
 * handle taken before the click may be detached by the time puppeteer scrolls to it.
 */
async function clickLive(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await page.$eval(selector, (el) => (el as unknown as { click(): void }).click());
}

Deno.test({
  name: "dashboard (admin token): live counts match /status, a job's page, cancel",
  ignore,
  async fn(): Promise<void> {
    const { bus, port, tokens, dir } = await securedBus();
    await using _bus = bus;
    const url = `ws://127.0.0.1:${port}`;
    await using browser = await HeadlessBrowser.launch();
    const { page, errors } = await browser.page();
    await openWithToken(page, port, tokens.admin);
    await waitText(page, "#role", (t) => t.startsWith("admin"), "the admin role");

    await using _node = scheduler(url, 2, tokens.scheduler);
    await using alice = producer(url, tokens.producer);
    for (let i = 1; i <= 12; i++) {
      alice.submit({ priority: 3, name: "greet", command: ["sh", "-c", `echo hello-${i}`] });
    }
    await until("12 jobs succeeded", () => bus.status().outcomes.succeeded === 12);
    for (let i = 0; i < 2; i++) {
      alice.submit({ priority: 5, name: "long", command: ["sleep", "60"] });
    }
    for (let i = 0; i < 3; i++) alice.submit({ priority: 7, name: "later", command: ["true"] });
    await countsMatchStatus(page, bus, 3, 2);
    await waitText(page, '#finished-hour [data-k="succeeded"]', (t) => t === "12", "12 succeeded");

    const shot = Deno.env.get("DASHBOARD_SCREENSHOT");
    if (shot) await page.screenshot({ path: shot });

    // Queue: the waiting jobs in dispatch order, with search.
    await showTab(page, "queue");
    await waitText(page, "#queue-count", (t) => t.startsWith("3 waiting; first 3"), "the queue");
    assert.match(
      await text(page, "#queue-rows"),
      /alice\/alice-15.*alice\/alice-16.*alice\/alice-17/,
    );
    await page.type("#queue-search", "alice-16");
    await waitText(page, "#queue-count", (t) => t.endsWith("first 1 shown"), "the search");

    // Jobs: find a job by name, open its page, read its output.
    await showTab(page, "jobs");
    // The filter's fields are set, not typed: a loaded machine may move the focus while typing.
    await page.$eval(
      "#filter-name",
      (el) => (el as unknown as { value: string }).value = "alice-1",
    );
    await page.select("#filter-state", "succeeded");
    await clickLive(page, "#jobs-filter button");
    // alice-1, alice-10, alice-11, alice-12
    await waitText(page, "#jobs-count", (t) => t === "4 match; 4 shown", "the filtered jobs");
    await clickLive(page, 'tr[data-job="alice/alice-1"]');
    await waitText(page, "#job-stdout", (t) => t === "hello-1\n", "the job's output");
    assert.match(await text(page, "#job-body"), /succeeded/);

    // Cancel a waiting job from its page.
    await showTab(page, "job/alice%2Falice-17");
    await page.waitForSelector("#job-cancel");
    await clickLive(page, "#job-cancel");
    await waitText(page, "#message", (t) => t.includes("done"), "the cancel's answer");
    await countsMatchStatus(page, bus, 2, 2);

    // Drain the scheduler from the overview.
    await showTab(page, "overview");
    await page.waitForSelector('button[data-drain="node-a"]');
    await clickLive(page, 'button[data-drain="node-a"]');
    await until("node-a draining", () => bus.status().schedulers[0]?.draining === true);
    await waitText(
      page,
      '#scheduler-rows tr[data-scheduler="node-a"] td:nth-child(6)',
      (t) => t === "yes",
      "draining shown",
    );
    assert.deepEqual(errors.filter((e) => !e.includes("401")), []); // 401: before the token
    await page.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "dashboard (monitor token): read-only, and the bus refuses its cancel",
  ignore,
  async fn(): Promise<void> {
    const { bus, port, tokens, dir } = await securedBus();
    await using _bus = bus;
    const url = `ws://127.0.0.1:${port}`;
    await using alice = producer(url, tokens.producer);
    alice.submit({ priority: 4, name: "stuck", command: ["true"] }); // no scheduler: it waits
    await until("one waiting job", () => bus.status().queue.length === 1);
    await using browser = await HeadlessBrowser.launch();
    const { page, errors } = await browser.page();
    await openWithToken(page, port, tokens.monitor);
    await waitText(page, "#role", (t) => t.startsWith("read-only"), "the read-only role");
    await countsMatchStatus(page, bus, 1, 0);
    await showTab(page, "job/alice%2Falice-1");
    await waitText(page, "#read-only-note", (t) => t.includes("admin token"), "the read-only note");
    assert.equal(await page.$("#job-cancel"), null);
    // The bus itself refuses a monitor's cancel (the page does not rely on hiding a button).
    const refused = await page.evaluate(() =>
      new Promise<string>((resolve) => {
        const token = sessionStorage.getItem("sched.dashboard.token") ?? "";
        const b64 = btoa(token).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        const ws = new WebSocket(`ws://${location.host}/`, ["sched.v2", `bearer.${b64}`]);
        ws.onopen = () =>
          ws.send(JSON.stringify({ cmd: "register", type: "monitor", protocol: 2 }));
        ws.onmessage = (e) => {
          const msg = JSON.parse(e.data);
          if (msg.cmd === "registered") {
            ws.send(JSON.stringify({ cmd: "cancel", id: "alice/alice-1" }));
          }
          if (msg.cmd === "error") {
            ws.close();
            resolve(msg.reason);
          }
        };
      })
    );
    assert.match(refused, /not allowed for role monitor/);
    assert.equal(bus.status().queue.length, 1);
    assert.deepEqual(errors.filter((e) => !e.includes("401")), []); // 401: before the token
    await page.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "dashboard: recovers by itself after the bus restarts on the same port",
  ignore,
  async fn(): Promise<void> {
    let bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
    await using relay = new TcpRelay(bus.listen().port);
    try {
      await using browser = await HeadlessBrowser.launch();
      const { page } = await browser.page();
      await page.goto(`http://127.0.0.1:${relay.port}/`);
      await waitText(page, "#conn", (t) => t === "live", "the page to connect");
      // A token given to a bus without --auth is not used (nor offered as a subprotocol).
      await page.type("#token-input", "sched_not-needed");
      await page.click("#token-save");
      await waitText(page, "#role", (t) => t.includes("no --auth"), "the page to say so");
      await waitText(page, "#conn", (t) => t === "live", "the page to connect again");
      await countsMatchStatus(page, bus, 0, 0);
      await bus.close();
      await waitText(page, "#conn", (t) => t !== "live", "the page to notice the bus is gone");
      bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
      relay.target = bus.listen().port;
      await using alice = producer(relay.url);
      alice.submit({ priority: 2, runtime: 1 }); // no scheduler: both wait
      alice.submit({ priority: 6, runtime: 1 });
      await waitText(page, "#conn", (t) => t === "live", "the page to reconnect");
      await countsMatchStatus(page, bus, 2, 0);
      await page.close();
    } finally {
      await bus.close();
    }
  },
});
