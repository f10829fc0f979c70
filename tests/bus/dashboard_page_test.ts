import assert from "node:assert/strict";
import { DASHBOARD_CSP, dashboardResponse } from "../../bus/dashboard_page.ts";
import { BusServer } from "../../bus/server.ts";

Deno.test("dashboardResponse: the page for browsers, its assets, each with the strict CSP", async () => {
  const browser = new Request("http://127.0.0.1/", { headers: { accept: "text/html,*/*" } });
  for (
    const [path, type] of [["/", "text/html"], ["/dashboard.js", "text/javascript"], [
      "/dashboard.css",
      "text/css",
    ]] as const
  ) {
    const response = dashboardResponse(path, browser);
    assert.ok(response, path);
    assert.ok(response.headers.get("content-type")?.startsWith(type), path);
    assert.equal(response.headers.get("content-security-policy"), DASHBOARD_CSP);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    await response.body?.cancel();
  }
  assert.match(DASHBOARD_CSP, /script-src 'self'/);
  assert.doesNotMatch(DASHBOARD_CSP, /unsafe/);
  assert.equal(dashboardResponse("/", new Request("http://127.0.0.1/")), undefined);
  assert.equal(dashboardResponse("/status", browser), undefined);
});

Deno.test("BusServer: GET / answers the dashboard to a browser, 426 to other clients", async () => {
  await using bus = new BusServer({ port: 0, pingTimeoutMs: 0 });
  const http = `http://127.0.0.1:${bus.listen().port}`;
  const page = await fetch(`${http}/`, { headers: { accept: "text/html" } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/dashboard.js" defer><\/script>/);
  const script = await fetch(`${http}/dashboard.js`);
  assert.match(await script.text(), /type: "monitor", protocol: 2/);
  const plain = await fetch(`${http}/`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
  const post = await fetch(`${http}/dashboard.js`, { method: "POST" });
  assert.equal(post.status, 404);
  await post.body?.cancel();
});
