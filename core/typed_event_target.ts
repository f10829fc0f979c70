/**
 * An `EventTarget` whose `addEventListener` / `removeEventListener` know the event class of
 * each event type.
 *
 * @module
 */

/**
 * An `EventTarget` typed by an event map (`{ type: EventClass }`): listeners of a known type
 * get the right event class. Dispatching is unchanged (`dispatchEvent`).
 *
 * @example
 * ```ts
 * import { TypedEventTarget } from "./typed_event_target.ts";
 * class TickEvent extends Event {
 *   constructor(readonly n: number) {
 *     super("tick");
 *   }
 * }
 * const target = new TypedEventTarget<{ tick: TickEvent }>();
 * target.addEventListener("tick", (event) => console.log(event.n)); // event: TickEvent
 * target.dispatchEvent(new TickEvent(1));
 * ```
 */
export class TypedEventTarget<M extends { [K in keyof M]: Event }> extends EventTarget {
  // Listeners by type, each with its capture flags (1: bubble, 2: capture): see listens().
  #listeners = new Map<string, Map<unknown, number>>();

  /**
   * Adds a listener; for a type of the map, the listener gets that event class.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener<K extends keyof M & string>(
    type: K,
    listener: (event: M[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Adds a listener of any type, as `EventTarget` does.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.addEventListener`.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | ((event: never) => void) | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
    if (!listener) return;
    let byListener = this.#listeners.get(type);
    if (!byListener) this.#listeners.set(type, byListener = new Map());
    byListener.set(listener, (byListener.get(listener) ?? 0) | captureBit(options));
  }

  /**
   * Removes a listener added with `addEventListener`.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener<K extends keyof M & string>(
    type: K,
    listener: (event: M[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener of any type, as `EventTarget` does.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget.removeEventListener`.
   */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | ((event: never) => void) | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
    const byListener = this.#listeners.get(type);
    const bits = byListener?.get(listener);
    if (bits === undefined) return;
    const left = bits & ~captureBit(options);
    if (left) byListener!.set(listener, left);
    else byListener!.delete(listener);
  }

  /**
   * Whether a listener of a type may be registered, so that an event nobody would receive need
   * not be built. Never false while one is; may stay true for a listener that `once` or a
   * `signal` removed.
   *
   * @param type The event type.
   * @returns False when no listener of that type was added or all were removed.
   */
  protected listens(type: keyof M & string): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0;
  }
}

function captureBit(options: boolean | EventListenerOptions | undefined): number {
  return (typeof options === "boolean" ? options : options?.capture) ? 2 : 1;
}
