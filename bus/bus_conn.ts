/**
 * One WebSocket connection as the bus server keeps it: its role, names, scope, limits and
 * event cursor.
 *
 * @module
 */

import type { TimerId } from "../core/clock.ts";
import type { EventReader } from "./event_feed.ts";
import type { IdScope } from "./owner_scope.ts";
import type { Role } from "./protocol.ts";
import type { RateLimiter } from "./rate_limiter.ts";
import type { TokenIdentity } from "./token_store.ts";
import type { ServerWebSocket } from "./ws_server_socket.ts";

/** A connection to the bus. */
export interface BusConn {
  /** The connection id (`c1`, `c2`, ...). */
  id: string;
  /** Its socket. */
  socket: ServerWebSocket;
  /** Its role once registered. */
  role: Role | undefined;
  /** Its protocol version (1 until it registers with 2). */
  protocol: 1 | 2;
  /** A scheduler's name (the connection id when none). */
  name: string;
  /** A producer's owner identity (the connection id when none). */
  owner: string;
  /** Rejection reasons already dispatched as events. */
  reported: Set<string>;
  /** Rejections not dispatched one by one. */
  suppressed: number;
  /** Resolves once the socket is closed. */
  closed: Promise<void>;
  /** With --auth: the token's holder (none: a seed client). */
  identity?: TokenIdentity | undefined;
  /** With --auth, a producer's: its ids are `<owner>/<id>` bus-wide. */
  scope: IdScope | undefined;
  /** Its message rate limit. */
  rate: RateLimiter;
  /** Stops the wait for its `register`. */
  stopRegisterWatch: () => void;
  /** After a close the peer may never answer: when to drop the TCP connection. */
  abortTimer: TimerId | undefined;
  /** A v2 producer's or a monitor's event cursor. */
  reader: EventReader | undefined;
  /** When its last frame arrived (clock ms). */
  heardAt: number;
}
