import assert from "node:assert/strict";
import { TypedEventTarget } from "../../core/typed_event_target.ts";

class Ping extends Event {
  constructor() {
    super("ping");
  }
}

class Target extends TypedEventTarget<{ ping: Ping; pong: Ping }> {
  has(type: "ping" | "pong"): boolean {
    return this.listens(type);
  }
}

Deno.test("TypedEventTarget.listens follows listeners added and removed, per capture flag", () => {
  const target = new Target();
  const seen: string[] = [];
  const a = (): number => seen.push("a");
  const b = (): number => seen.push("b");
  assert.equal(target.has("ping"), false);
  target.addEventListener("ping", a);
  target.addEventListener("ping", a); // a duplicate, as EventTarget ignores it
  target.addEventListener("ping", a, { capture: true });
  target.addEventListener("ping", b);
  assert.equal(target.has("ping"), true);
  assert.equal(target.has("pong"), false);
  target.removeEventListener("ping", b);
  target.removeEventListener("ping", a);
  assert.equal(target.has("ping"), true); // a with capture is still there
  target.dispatchEvent(new Ping());
  assert.deepEqual(seen, ["a"]);
  target.removeEventListener("ping", a, true);
  target.removeEventListener("ping", b); // not there: no effect
  assert.equal(target.has("ping"), false);
});
