import assert from "node:assert/strict";
import { ALLOWED, roleRefusal } from "../../bus/role_table.ts";
import type { ClientCommand, Role } from "../../bus/protocol.ts";
import { parseClientMessage } from "../../bus/client_message.ts";
import type { Message } from "../fixtures/raw_ws.ts";
import { startTokenBus } from "../fixtures/token_bus.ts";

/**
 * One harmless message of every client command. The Record type makes a new command a compile
 * error here until it has a sample (and so a row in the live table below).
 */
const SAMPLES: Record<ClientCommand, Message> = {
  register: { cmd: "register", type: "producer", protocol: 2 },
  job_request: { cmd: "job_request", id: "t-1", payload: { priority: 5, runtime: 1 } },
  cancel: { cmd: "cancel", id: "nope" },
  set_priority: { cmd: "set_priority", id: "nope", priority: 3 },
  event: { cmd: "event", id: "nope", state: "started" },
  drain: { cmd: "drain" },
  output: { cmd: "output", id: "nope", stream: "stdout", data: "x" },
  list: { cmd: "list" },
  show: { cmd: "show", id: "nope" },
};

/** Every token role, with each type it may register as (admin: any). */
const SUBJECTS: [token: string, type: Role][] = [
  ["alice", "producer"],
  ["node", "scheduler"],
  ["watcher", "monitor"],
  ["root", "producer"],
  ["root", "scheduler"],
  ["root", "monitor"],
];
const TOKENS = { alice: "producer", node: "scheduler", watcher: "monitor", root: "admin" } as const;

Deno.test("role table: covers every client command, and every sample parses", () => {
  const commands = Object.keys(SAMPLES).sort();
  assert.deepEqual([...Object.keys(ALLOWED), "register"].sort(), commands);
  for (const [cmd, sample] of Object.entries(SAMPLES)) {
    const parsed = parseClientMessage(JSON.stringify(sample));
    assert.ok(parsed.ok, `${cmd}: ${parsed.ok ? "" : parsed.reason}`);
  }
});

Deno.test("role table: the refusal's words, without and with a token", () => {
  assert.equal(
    roleRefusal("cancel", "monitor", 2),
    "cancel needs a connection registered as protocol 2 producer",
  );
  assert.equal(
    roleRefusal("cancel", "monitor", 2, { tokenRole: "monitor" }),
    "cancel needs a connection registered as protocol 2 producer (or an admin token): " +
      "not allowed for role monitor",
  );
  assert.equal(
    roleRefusal("event", "producer", 2, { tokenRole: "admin" }),
    "event needs a connection registered as protocol 2 scheduler: not allowed for role admin",
  );
  assert.equal(roleRefusal("cancel", "monitor", 2, { tokenRole: "admin" }), undefined);
  assert.equal(roleRefusal("drain", "producer", 2, { tokenRole: "admin" }), undefined);
  assert.equal(roleRefusal("show", "scheduler", 2, { tokenRole: "admin" }), undefined);
  assert.match(roleRefusal("output", "monitor", 2, { tokenRole: "admin" }) ?? "", /admin$/);
});

Deno.test("role table: every role × every message on a bus with --auth, allowed or refused", async () => {
  await using b = await startTokenBus(TOKENS);
  let rows = 0;
  for (const [token, type] of SUBJECTS) {
    await using peer = await b.as(token, type);
    for (const [cmd, sample] of Object.entries(SAMPLES) as [ClientCommand, Message][]) {
      if (cmd === "register") continue; // before registering only; see server_test's --auth tests
      const tokenRole = TOKENS[token as keyof typeof TOKENS];
      const refusal = roleRefusal(cmd, type, 2, { tokenRole });
      peer.send(sample);
      peer.send({ cmd: "probe" }); // always answered: the round trip's end
      const answers: Message[] = [];
      for (;;) {
        const message = await peer.next((m) => m.cmd !== "job" && m.cmd !== "event");
        if (message.reason === 'unknown cmd "probe"') break;
        answers.push(message);
      }
      const where = `${token} as ${type}: ${cmd}`;
      const refused = answers.filter((m) => m.cmd === "error" && /needs a/.test(String(m.reason)));
      if (refusal === undefined) assert.deepEqual(refused, [], where);
      else {
        assert.match(refusal, new RegExp(`not allowed for role ${tokenRole}$`), where);
        const id = "id" in sample ? { id: sample.id } : {};
        assert.deepEqual(answers, [{ cmd: "error", reason: refusal, op: cmd, ...id }], where);
      }
      rows++;
    }
    // The connection kept its rights through the refusals: a list where allowed still answers.
    if (roleRefusal("list", type, 2, { tokenRole: TOKENS[token as keyof typeof TOKENS] })) continue;
    peer.send({ cmd: "list" });
    assert.equal((await peer.next((m) => m.cmd === "jobs")).cmd, "jobs");
  }
  assert.equal(rows, SUBJECTS.length * (Object.keys(SAMPLES).length - 1));
});
