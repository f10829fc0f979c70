/**
 * A bare `Deno.serve` WebSocket relay: the ceiling the bus is measured against by
 * `bench/bus_throughput.ts`. A connection to `/sub` subscribes; every frame from any other
 * connection is forwarded untouched (no parsing, no validation, no queue) to one subscriber,
 * round-robin, as the bus gives each job to one scheduler. Frames arriving while nobody has
 * subscribed are dropped.
 *
 * `deno run -A bench/relay.ts --port 0` prints `relay listening on ws://127.0.0.1:PORT/` and
 * runs until SIGINT or SIGTERM.
 *
 * @module
 */

import {
  type CliIo,
  type Flags,
  formatUsage,
  integerFlag,
  type MainOptions,
  runCli,
} from "../cli/mod.ts";
import { ShutdownSignal } from "../process/shutdown_signal.ts";

/** Options for {@linkcode serveRelay}. */
export interface RelayOptions {
  /**
   * Interface to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks a free one.
   * @default {0}
   */
  port?: number;
}

/**
 * Starts the relay.
 *
 * @param options See {@linkcode RelayOptions}.
 * @returns The server; `shutdown()` it when done (open sockets are closed by the peers).
 * @example
 * ```ts
 * import { serveRelay } from "./relay.ts";
 * const relay = serveRelay({ port: 0 });
 * console.log(relay.addr.port > 0); // true
 * await relay.shutdown();
 * ```
 */
export function serveRelay(options: RelayOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const subscribers: WebSocket[] = [];
  let turn = 0;
  return Deno.serve(
    { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0, onListen(): void {} },
    (request) => {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("relay: connect with a WebSocket\n", { status: 426 });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      if (new URL(request.url).pathname === "/sub") {
        subscribers.push(socket);
        socket.onclose = () => subscribers.splice(subscribers.indexOf(socket), 1);
      } else {
        socket.onmessage = (event) => {
          if (subscribers.length === 0) return;
          turn = (turn + 1) % subscribers.length;
          subscribers[turn]?.send(event.data);
        };
      }
      return response;
    },
  );
}

const USAGE = formatUsage({
  command: "deno run -A bench/relay.ts",
  args: "[options]",
  about: `A bare WebSocket relay (the bus bench's ceiling): connections to /sub subscribe;
every frame from another connection goes to one subscriber, round-robin.`,
  sections: [{
    title: "Options",
    rows: [
      ["--host HOST", "interface to listen on (default 127.0.0.1)"],
      ["--port PORT", "port, 0 for any free one (default 0)"],
      ["-h, --help", "show this help"],
    ],
  }],
  examples: ["deno run -A bench/relay.ts --port 0"],
});

const OPTIONS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "0" },
} as const;

/**
 * Runs the relay until SIGINT or SIGTERM.
 *
 * @param args Command-line arguments (a leading `--` is dropped).
 * @param options Injection points: output, a stop signal.
 * @returns The exit code: 0 after a signal or `--help`, 2 on a bad flag.
 * @example
 * ```ts
 * import { main } from "./relay.ts";
 * console.log(await main(["--help"], { stdout: () => {} })); // 0
 * ```
 */
export function main(args: string[], options: MainOptions = {}): Promise<number> {
  return runCli({ name: "relay", usage: USAGE, options: OPTIONS, configure, run }, args, options);
}

function configure({ values }: Flags<typeof OPTIONS>): RelayOptions {
  return { hostname: values.host, port: integerFlag("--port", values.port, { max: 65535 }) };
}

async function run(options: RelayOptions, io: CliIo): Promise<number> {
  const relay = serveRelay(options);
  io.out(`relay listening on ws://${relay.addr.hostname}:${relay.addr.port}/`);
  using shutdown = new ShutdownSignal({ signal: io.signal });
  await shutdown.wait();
  await relay.shutdown();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
