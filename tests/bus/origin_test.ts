import assert from "node:assert/strict";
import { originRefusal } from "../../bus/origin.ts";

Deno.test("originRefusal lets through no Origin and the bus's own origin only", () => {
  const host = "127.0.0.1:8101";
  assert.equal(originRefusal(null, host, false), undefined);
  assert.equal(originRefusal("http://127.0.0.1:8101", host, false), undefined);
  assert.equal(originRefusal("HTTP://127.0.0.1:8101", host, false), undefined);
  assert.equal(originRefusal("https://127.0.0.1:8101", host, true), undefined);
  assert.equal(originRefusal("http://localhost", "LOCALHOST:80", false), undefined);
  assert.equal(originRefusal("https://bus.example", "bus.example:443", true), undefined);
  const refused: [string, string | null, boolean][] = [
    ["https://evil.example", host, false],
    ["http://127.0.0.1:8102", host, false], // another port: another origin
    ["http://localhost:8101", host, false], // another name: another origin
    ["https://127.0.0.1:8101", host, false], // the bus serves no https page
    ["http://127.0.0.1:8101", host, true], // nor an http one when it serves TLS
    ["null", host, false], // sandboxed pages, file:// pages
    ["file:///tmp/x.html", host, false],
    ["not a url", host, false],
    ["http://127.0.0.1:8101", null, false], // no Host to compare with
    ["http://127.0.0.1:8101", "bad host/x", false],
  ];
  for (const [origin, hostHeader, secure] of refused) {
    const reason = originRefusal(origin, hostHeader, secure);
    assert.ok(reason, `${origin} for ${hostHeader} should be refused`);
    assert.match(reason, /^origin .* (is not this bus|refused)/);
  }
  assert.equal(
    originRefusal("https://evil.example", host, false),
    "origin https://evil.example is not this bus (http://127.0.0.1:8101)",
  );
});
