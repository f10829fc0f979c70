/**
 * A bus client's resume point in the bus's event series (`docs/protocol.md`, "Clients:
 * resuming events"): the greatest event `seq` it has taken, sent back as `register.after` on
 * every re-registration so that the bus replays what the client missed while away.
 *
 * @module
 */

/** What a {@linkcode EventCursor} makes of a `registered` answer. */
export type CursorRegistration =
  /** The first registration: nothing was missed. */
  | "first"
  /** A re-registration: the bus replays what came after the resume point (if it has one). */
  | "resumed"
  /**
   * The bus's latest `seq` is below the resume point: its series started again (a bus
   * restarted without its store). Nothing can be replayed: re-read the jobs followed.
   */
  | "reset";

/**
 * The resume point of a producer or monitor: the greatest event `seq` taken. Events without
 * `seq` (an older bus) are always taken and leave it as it is; an event whose `seq` is at or
 * below it is a replayed duplicate.
 *
 * @example
 * ```ts
 * import { EventCursor } from "./event_cursor.ts";
 * const cursor = new EventCursor();
 * console.log(cursor.register()); // {} (first registration: live events only)
 * cursor.registered(40);          // the bus's latest seq when we registered
 * console.log(cursor.take(41), cursor.take(41), cursor.take(undefined)); // true false true
 * console.log(cursor.register()); // { after: 41 }
 * ```
 */
export class EventCursor {
  #seq: number | undefined;
  #registeredOnce = false;

  /** The resume point: the greatest `seq` taken, or `undefined` while none was seen. */
  get seq(): number | undefined {
    return this.#seq;
  }

  /**
   * The fields to add to a `register` message: `{ after }` on a re-registration once a
   * resume point is known, else none.
   *
   * @returns `{ after: seq }` or `{}`.
   */
  register(): { after?: number } {
    return this.#registeredOnce && this.#seq !== undefined ? { after: this.#seq } : {};
  }

  /**
   * Takes the bus's `registered` answer. On the first registration its `seq` (the bus's latest
   * event) becomes the resume point; later, a `seq` below the resume point means a bus whose
   * series started again: the resume point becomes that `seq`.
   *
   * @param seq The `registered` message's `seq`, if any.
   * @returns What the registration means for the client; see {@linkcode CursorRegistration}.
   */
  registered(seq: unknown): CursorRegistration {
    const known = isSeq(seq) ? seq : undefined;
    const first = !this.#registeredOnce;
    this.#registeredOnce = true;
    if (first) {
      if (known !== undefined && (this.#seq === undefined || known > this.#seq)) {
        this.#seq = known;
      }
      return "first";
    }
    if (known !== undefined && this.#seq !== undefined && known < this.#seq) {
      this.#seq = known;
      return "reset";
    }
    return "resumed";
  }

  /**
   * Whether to take an event: `false` for a replayed duplicate (its `seq` at or below the
   * resume point); otherwise `true`, and its `seq` becomes the resume point.
   *
   * @param seq The event's `seq`, if any (an older bus sends none: always taken).
   * @returns `true` to take the event, `false` to ignore it.
   */
  take(seq: unknown): boolean {
    if (!isSeq(seq)) return true;
    if (this.#seq !== undefined && seq <= this.#seq) return false;
    this.#seq = seq;
    return true;
  }

  /**
   * Takes a `resync`: the bus could not replay everything; the client re-reads the jobs it
   * follows and resumes from the message's `seq`.
   *
   * @param seq The `resync` message's `seq`.
   * @throws {RangeError} If `seq` is not an integer >= 0.
   */
  resync(seq: number): void {
    if (!isSeq(seq)) {
      throw new RangeError(`Cannot resync: 'seq' must be an integer >= 0, got ${String(seq)}`);
    }
    this.#seq = seq;
  }
}

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
