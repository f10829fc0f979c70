/**
 * What a {@linkcode BusServer} is given and what it tells: its options, and the `/health` and
 * `/status` documents.
 *
 * @module
 */

import type { Clock } from "../core/clock.ts";
import type { DispatcherStatus } from "./dispatcher.ts";
import type { JobStore, StoreStats } from "./job_store.ts";
import type { BusJobState } from "./protocol.ts";
import type { TokenStore } from "./token_store.ts";
import type { ConnLimitsOptions } from "./conn_limits.ts";

/**
 * Options for {@linkcode BusServer}; the connection limits (`maxConnections`,
 * `registerTimeoutMs`, `maxRate`) are those of `ConnLimitsOptions`.
 */
export interface BusServerOptions extends ConnLimitsOptions {
  /**
   * Interface to listen on.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to listen on; 0 picks a free one.
   * @default {8101}
   */
  port?: number;
  /**
   * Most jobs waiting in the bus; beyond it new jobs are rejected "queue full".
   * @default {100_000}
   */
  maxQueue?: number;
  /**
   * Most unfinished jobs one owner may have in the bus; beyond it its new jobs are rejected
   * "queue full for owner X".
   * @default {undefined} no limit per owner
   */
  maxQueuePerOwner?: number | undefined;
  /**
   * A certificate chain (PEM text) to serve TLS (`wss://`, `https://`); needs `key`.
   * @default {undefined} plain `ws://` and `http://`
   */
  cert?: string | undefined;
  /**
   * The private key (PEM text) of `cert`.
   * @default {undefined}
   */
  key?: string | undefined;
  /**
   * Largest frame accepted, in bytes; a bigger one closes the connection with 1009.
   * @default {65_536}
   */
  maxFrameBytes?: number;
  /**
   * A peer that does not answer pings within this time is closed and treated as gone
   * (rounded up to whole seconds; 0 disables).
   * @default {30_000}
   */
  pingTimeoutMs?: number;
  /**
   * Time for a connection to finish its HTTP request head (the TLS handshake included); a
   * connection that has not is closed.
   * @default {10000}
   */
  headerTimeoutMs?: number | undefined;
  /**
   * Every job to every scheduler (the seed's behavior) instead of exactly-once.
   * @default {false}
   */
  broadcast?: boolean;
  /**
   * Send-buffer level above which a peer gets no job frames (they wait), no live events (it
   * gets them from the store once it reads again) and no live output (dropped and counted); at
   * 4 times this level the peer is closed with 1008.
   * @default {1_048_576}
   */
  maxBufferedBytes?: number;
  /**
   * The job states for which the server dispatches its `job` event (a log showing only some);
   * the events sent to producers and monitors are not affected.
   * @default {undefined} every state
   */
  jobEventStates?: readonly BusJobState[];
  /**
   * Where jobs, their changes and results are kept (`list`, `show`, the idempotency of ids, a
   * restart). The bus writes and commits it; the caller closes a store it gave.
   * @default {new SqliteStore({ path: ":memory:" })} (closed with the bus)
   */
  store?: JobStore;
  /**
   * How long jobs a restarted bus found at schedulers wait for each scheduler to register
   * again before they are requeued (ms).
   * @default {30_000}
   */
  recoverGraceMs?: number | undefined;
  /**
   * How long the jobs of a scheduler lost without `drain` wait before they may run elsewhere
   * (see `DispatcherOptions.lostFenceMs`).
   * @default {1000}
   */
  lostFenceMs?: number | undefined;
  /**
   * Where time comes from (event timestamps, uptime, retry timers, register timeouts, rate
   * limits).
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * The tokens (`--auth FILE`): every upgrade and `/status` then needs a valid token (401 before
   * the upgrade, 429 after 10 failures from an address within 60 s), a connection registers only
   * as its token's role, and its token's name is its owner / scheduler name (see `bus/auth.ts`).
   * @default {undefined} no authentication: anyone who reaches the port may do anything
   */
  auth?: TokenStore;
  /**
   * With `auth`: let in upgrades without a token, as seed (protocol 1) clients only.
   * @default {false}
   */
  allowSeedClients?: boolean;
  /**
   * Serve `GET /metrics` (Prometheus text format, see `bus/bus_metrics.ts`): `text` makes the
   * document; with `auth` it needs a metrics, monitor or admin token unless `open`.
   * @default {undefined} no `/metrics` (404)
   */
  metrics?: { text: () => string; open?: boolean };
}

/** The `/health` document. */
export interface BusHealth {
  /** Always "ok" while serving. */
  status: "ok";
  /** Seconds since `listen()`. */
  uptimeS: number;
  /** Registered producers. */
  producers: number;
  /** Registered schedulers by protocol. */
  schedulers: { seed: number; v2: number };
  /** Registered monitors. */
  monitors: number;
  /** Jobs: distinct accepted, hand-overs to schedulers, waiting now. */
  jobs: { received: number; delivered: number; queued: number };
  /** The store: its kind, and false while its commits fail (new jobs are then rejected). */
  store: { kind: string; available: boolean };
}

/** The `/status` document: the dispatcher's view, the store's counts, dropped output. */
export interface BusStatus extends DispatcherStatus {
  /** The store's counts. */
  store: StoreStats;
  /** In a cluster of buses on one shared store: this bus, and whether it leads. */
  cluster?: { bus: string; leading: boolean };
  /**
   * Pieces of jobs' live output (`follow`) not sent to producers whose send buffer was over
   * the limit (events are never dropped: a slow reader gets them later from the store).
   */
  droppedOutput: number;
}
