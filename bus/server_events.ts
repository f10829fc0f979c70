/**
 * The events a `BusServer` dispatches: connections, registrations, rejected input,
 * job changes, hand-overs and notices.
 *
 * @module
 */

import type { DispatcherJobEvent, DispatchInfo } from "./dispatcher.ts";
import type { Role } from "./protocol.ts";

/** A connection opened (`open: true`) or closed. */
export class BusConnectionEvent extends Event {
  /**
   * Creates the event.
   *
   * @param client Connection id.
   * @param open True when it opened, false when it closed.
   * @param detail Remote address (on open), close code and reason (on close).
   */
  constructor(
    readonly client: string,
    readonly open: boolean,
    readonly detail: { remote?: string; code?: number; reason?: string } = {},
  ) {
    super("connection");
  }
}

/** A client registered. */
export class BusRegistrationEvent extends Event {
  /**
   * Creates the event.
   *
   * @param client Connection id.
   * @param role Its role.
   * @param protocol Its protocol version.
   * @param name Its name (the connection id when none was given).
   */
  constructor(
    readonly client: string,
    readonly role: Role,
    readonly protocol: 1 | 2,
    readonly name: string,
  ) {
    super("registration");
  }
}

/**
 * Bad input was rejected. Dispatched once per distinct reason per connection (at most 5); the
 * rest are counted and reported in one event with `suppressed` > 0 when the connection closes.
 */
export class BusRejectionEvent extends Event {
  /**
   * Creates the event.
   *
   * @param client Connection id.
   * @param reason What was wrong.
   * @param suppressed How many further rejections were not reported one by one.
   */
  constructor(readonly client: string, readonly reason: string, readonly suppressed = 0) {
    super("rejection");
  }
}

/** A job changed state (accepted, requeued, reported by a scheduler, final). */
export class BusJobEvent extends Event {
  /**
   * Creates the event.
   *
   * @param job The event, with the job's owner.
   */
  constructor(readonly job: DispatcherJobEvent) {
    super("job");
  }
}

/** A job was handed to a scheduler. */
export class BusDispatchEvent extends Event {
  /**
   * Creates the event.
   *
   * @param dispatch Which job, to whom, and the victim for a preemptor.
   */
  constructor(readonly dispatch: DispatchInfo) {
    super("dispatch");
  }
}

/**
 * Something unusual but handled: a debug-level line, a line an operator reads (`"info"`: the
 * bus's part in a cluster), or (`level: "warning"`) one an operator
 * should see, such as a scheduler registering with a name a live scheduler connection uses.
 */
export class BusNoticeEvent extends Event {
  /**
   * Creates the event.
   *
   * @param message The line.
   * @param level `"debug"` (the default), `"info"` or `"warning"`.
   */
  constructor(
    readonly message: string,
    readonly level: "debug" | "info" | "warning" = "debug",
  ) {
    super("notice");
  }
}

/** The bus committed a batch of writes to its store (or failed to). */
export class BusCommitEvent extends Event {
  /**
   * Creates the event.
   *
   * @param ok Whether the commit succeeded.
   * @param ms How long it took (0 for a failed one).
   * @param writes How many writes it held (0 for a failed one).
   */
  constructor(readonly ok: boolean, readonly ms: number, readonly writes: number) {
    super("commit");
  }
}

/** The events `BusServer` dispatches, by type. */
export interface BusServerEventMap {
  /** A connection opened or closed. */
  connection: BusConnectionEvent;
  /** A client registered. */
  registration: BusRegistrationEvent;
  /** Bad input was rejected. */
  rejection: BusRejectionEvent;
  /** A job changed state. */
  job: BusJobEvent;
  /** A job was handed to a scheduler. */
  dispatch: BusDispatchEvent;
  /** Something unusual but handled. */
  notice: BusNoticeEvent;
  /** A batch of store writes was committed (or failed). */
  commit: BusCommitEvent;
}
