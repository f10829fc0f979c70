/**
 * Where a job may run: its placement (the labels it requires, and for a command job its
 * `command[0]`), whether a scheduler fits it, and in words why none does. Jobs with equal
 * placements form one class of the bus queue.
 *
 * @module
 */

import {
  allowsCommand,
  type CommandSpec,
  formatLabels,
  isCommandPayload,
  labelsMatch,
} from "../scheduler/command_spec.ts";
import type { JobPayload } from "./protocol.ts";
import type { SchedulerPeer } from "./dispatcher_types.ts";

/**
 * Where a job may run: the labels it requires and, for a command job, its `command[0]`
 * (checked against each scheduler's allow-list).
 */
export interface Placement {
  /** Labels a scheduler must have, with these values (none: any). */
  readonly requires: Readonly<Record<string, string>> | undefined;
  /** A command job's `command[0]`; undefined for a sleeper job. */
  readonly command: string | undefined;
}

/** The placement of every sleeper job without `requires`: any scheduler fits it. */
export const ANY_PLACEMENT: Placement = Object.freeze({ requires: undefined, command: undefined });

/**
 * A job's placement, from its validated payload; {@linkcode ANY_PLACEMENT} itself for a sleeper
 * job without (or with empty) `requires`.
 *
 * @param payload The payload.
 * @returns Its placement.
 * @example
 * ```ts
 * import { ANY_PLACEMENT, placementOf } from "./placement.ts";
 * console.log(placementOf({ priority: 1, runtime: 2 }) === ANY_PLACEMENT); // true
 * console.log(placementOf({ priority: 1, command: ["ffmpeg", "-i", "a.mp4"] }).command); // ffmpeg
 * ```
 */
export function placementOf(payload: JobPayload): Placement {
  const command = isCommandPayload(payload) ? (payload as CommandSpec).command[0] : undefined;
  const requires = payload.requires as Record<string, string> | undefined;
  const none = requires === undefined || Object.keys(requires).length === 0;
  if (command === undefined && none) return ANY_PLACEMENT;
  return { requires: none ? undefined : requires, command };
}

/**
 * A placement's class key: equal keys, equal matching schedulers (the order of the required
 * labels does not matter).
 *
 * @param placement The placement.
 * @returns `""` for {@linkcode ANY_PLACEMENT}, else a JSON text.
 * @example
 * ```ts
 * import { placementKey } from "./placement.ts";
 * const a = placementKey({ requires: { gpu: "a100", os: "linux" }, command: undefined });
 * const b = placementKey({ requires: { os: "linux", gpu: "a100" }, command: undefined });
 * console.log(a === b); // true
 * ```
 */
export function placementKey(placement: Placement): string {
  if (placement === ANY_PLACEMENT) return "";
  const requires = placement.requires ? Object.entries(placement.requires).sort() : [];
  return JSON.stringify([placement.command ?? null, requires]);
}

/**
 * Whether a scheduler may run a job of this placement: its labels contain the required ones
 * and, for a command job, its allow-list allows `command[0]`. Seed schedulers have neither
 * labels nor an allow-list: they take only sleeper jobs without `requires`.
 *
 * @param peer The scheduler.
 * @param placement The job's placement.
 * @returns True when the job may go there.
 * @example
 * ```ts
 * import { placementFits } from "./placement.ts";
 * const peer = {
 *   client: "c1", name: "a", protocol: 2 as const, slots: 1, canSend: () => true,
 *   sendJob: () => {}, sendCancel: () => {}, labels: { gpu: "a100" }, commands: ["ffmpeg"],
 * };
 * console.log(placementFits(peer, { requires: { gpu: "a100" }, command: "ffmpeg" })); // true
 * console.log(placementFits(peer, { requires: undefined, command: "python3" })); // false
 * ```
 */
export function placementFits(peer: SchedulerPeer, placement: Placement): boolean {
  const { requires, command } = placement;
  if (peer.protocol === 1) return command === undefined && labelsMatch({}, requires);
  return labelsMatch(peer.labels ?? {}, requires) &&
    (command === undefined || allowsCommand(peer.commands ?? [], command));
}

/**
 * Why a job of this placement has nowhere to go among these schedulers.
 *
 * @param peers The schedulers that take jobs (connected, not draining).
 * @param placement The job's placement.
 * @returns `"no scheduler connected"`, `"no scheduler with gpu=a100"`, `"no scheduler allows
 * command ffmpeg"` or `"no scheduler with gpu=a100 allows command ffmpeg"`; undefined when one
 * of them fits (the job waits its turn).
 * @example
 * ```ts
 * import { unplacedReason } from "./placement.ts";
 * const peer = {
 *   client: "c1", name: "a", protocol: 2 as const, slots: 1, canSend: () => true,
 *   sendJob: () => {}, sendCancel: () => {}, labels: { gpu: "a100" },
 * };
 * console.log(unplacedReason([peer], { requires: { gpu: "h100" }, command: undefined }));
 * // no scheduler with gpu=h100
 * console.log(unplacedReason([peer], { requires: undefined, command: "ffmpeg" }));
 * // no scheduler allows command ffmpeg
 * ```
 */
export function unplacedReason(
  peers: readonly SchedulerPeer[],
  placement: Placement,
): string | undefined {
  if (peers.length === 0) return "no scheduler connected";
  if (peers.some((peer) => placementFits(peer, placement))) return undefined;
  const { requires, command } = placement;
  const labelled =
    peers.filter((peer) => labelsMatch(peer.protocol === 2 ? peer.labels ?? {} : {}, requires))
      .length;
  const wanted = requires === undefined ? "" : formatLabels(requires);
  if (labelled === 0) return `no scheduler with ${wanted}`;
  // Some have the labels, so the command is what none of them allows.
  return labelled < peers.length
    ? `no scheduler with ${wanted} allows command ${command}`
    : `no scheduler allows command ${command}`;
}
