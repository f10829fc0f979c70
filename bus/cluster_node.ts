/**
 * A bus in a cluster of buses sharing one store (PostgreSQL): it starts as a follower, takes the
 * leader lock when it is free, and switches the bus's placement accordingly — the leader runs the
 * `Dispatcher` for the whole cluster (its remote schedulers are peers reached through the
 * store's log), a follower a `FollowerPlacer`. See `docs/cluster.md`.
 *
 * @module
 */

import type { ClusterBatch, ClusterMail, ClusterStore } from "./cluster_mail.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { SchedulerPeer } from "./dispatcher_types.ts";
import { FollowerPlacer } from "./follower_placer.ts";
import type { JobPlacer } from "./job_placer.ts";
import type { JobStore, StoredEvent } from "./job_store.ts";
import { isFinalState } from "../scheduler/job.ts";

/** How long the leader keeps the log's entries (every live bus has read them long before). */
const LOG_KEPT_MS = 10 * 60_000;

/** What {@linkcode ClusterNode} needs from the bus server. */
export interface ClusterNodeOptions {
  /** The shared store (unwrapped: for the log and the lock). */
  store: ClusterStore;
  /** The same store as the bus writes it (through its commit gate). */
  tracked: JobStore;
  /** Makes sure the current batch is committed soon (mail is staged in it). */
  schedule: () => void;
  /** A new Dispatcher over the store, wired to the bus (for when this bus leads). */
  makeDispatcher: () => Dispatcher;
  /** Puts a placer in charge of the bus's jobs. */
  setPlacer: (placer: JobPlacer) => void;
  /** The bus's own schedulers, as peers. */
  localSchedulers: () => SchedulerPeer[];
  /** Sends a message to a local scheduler. */
  toScheduler: (client: string, message: { cmd: "reported"; ids: string[] }) => void;
  /** Routes another bus's job events to this bus's producers and monitors. */
  onEvents: (events: StoredEvent[]) => void;
  /** A line for the operator. */
  log: (line: string) => void;
  /**
   * How often a follower tries the leader lock (ms).
   * @default {1000}
   */
  leadEveryMs?: number;
}

/**
 * The cluster role of one bus; see the module doc.
 *
 * @example
 * ```ts ignore
 * const node = new ClusterNode({ store, tracked, schedule, makeDispatcher, setPlacer, ... });
 * await node.start();
 * console.log(node.leading);
 * ```
 */
export class ClusterNode {
  #options: ClusterNodeOptions;
  #store: ClusterStore;
  #placer: JobPlacer;
  #leader: Dispatcher | undefined;
  #follower: FollowerPlacer | undefined;
  #remote = new Map<string, Set<string>>(); // bus → its schedulers' keys at the leader
  #names = new Map<string, string>(); // a remote scheduler's key at the leader → its name
  #localSeen = new Set<string>(); // the local schedulers the leader's watch has seen
  #timer: ReturnType<typeof setTimeout> | undefined;
  #watch: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #saidFollows = false;
  #ticks = 0;

  /**
   * Creates the node as a follower (call {@linkcode ClusterNode.start}).
   *
   * @param options See {@linkcode ClusterNodeOptions}.
   */
  constructor(options: ClusterNodeOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#placer = this.#follow();
    options.store.onDeposed(() => {
      if (this.#leader) this.#demote("another bus leads now (a newer leader epoch)");
    });
  }

  /** The placer in charge now. */
  get placer(): JobPlacer {
    return this.#placer;
  }

  /** This bus's id in the cluster. */
  get bus(): string {
    return this.#store.busId;
  }

  /** Whether this bus leads the cluster. */
  get leading(): boolean {
    return this.#leader !== undefined;
  }

  /** Follows the other buses' batches, then tries to lead (now, and every second while not). */
  async start(): Promise<void> {
    await this.#store.onBatch((batch) => this.#onBatch(batch));
    await this.#tryLead();
  }

  /** Stops trying to lead, lets the lock go. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    clearInterval(this.#watch);
    this.#watch = undefined;
    if (this.#leader) await this.#store.resign().catch(() => {});
  }

  async #tryLead(): Promise<void> {
    this.#timer = undefined;
    if (this.#closed || this.#leader) return;
    const epoch = await this.#store.tryLead().catch(() => undefined);
    if (this.#closed) return;
    if (epoch !== undefined) this.#promote(epoch);
    else {
      if (!this.#saidFollows) this.#options.log("follows: another bus leads the cluster");
      this.#saidFollows = true;
      this.#timer = setTimeout(() => this.#tryLead(), this.#options.leadEveryMs ?? 1000);
    }
  }

  #follow(): FollowerPlacer {
    const follower = this.#follower = new FollowerPlacer({
      bus: this.#store.busId,
      store: this.#options.tracked,
      mail: (to, message) => this.#mail(to, message),
      toScheduler: this.#options.toScheduler,
    });
    return follower;
  }

  /** Leads: a Dispatcher for the cluster, the local schedulers in it, the others asked in. */
  #promote(epoch: number): void {
    const dispatcher = this.#leader = this.#options.makeDispatcher();
    const tracked = this.#options.tracked;
    dispatcher.announce( // accepted while no bus led: nobody said `queued` yet
      tracked.unfinished()
        .filter((job) => job.state === "queued" && job.attempt === 0)
        .filter((job) => tracked.show(job.id)?.history.length === 0)
        .map((job) => job.id),
    );
    const follower = this.#follower;
    this.#follower?.close();
    this.#follower = undefined;
    this.#remote.clear();
    this.#names.clear();
    this.#localSeen.clear();
    for (const peer of this.#options.localSchedulers()) {
      // Final reports this bus forwarded to a leader that died before storing them: this bus
      // stores them now. Without them the job stays at its scheduler, which will not say it
      // again until it reconnects: lost with it, the job ran again after it had succeeded.
      // (Not acknowledged here: the scheduler keeps them until its next registration.)
      const reports = follower?.unackedReports(peer.client) ?? [];
      const ids = reports.map((event) => event.id);
      dispatcher.addScheduler(peer, [...new Set([...this.#runningAt(peer.name), ...ids])]);
      for (const event of reports) dispatcher.schedulerEvent(peer.client, event);
    }
    this.#placer = dispatcher;
    this.#options.setPlacer(dispatcher);
    this.#mail("*", { kind: "leader", bus: this.#store.busId, epoch });
    this.#options.log(`leads the cluster (epoch ${epoch})`);
    this.#watch = setInterval(() => {
      void this.#reapGoneBuses();
      this.#supersedeByLocal();
    }, 1000);
  }

  /** A local scheduler new since the last look supersedes the remote ones of its name. */
  #supersedeByLocal(): void {
    const seen = new Set<string>();
    for (const peer of this.#options.localSchedulers()) {
      seen.add(peer.client);
      if (!this.#localSeen.has(peer.client)) this.#supersede(peer.name, peer.client);
    }
    this.#localSeen = seen;
  }

  /**
   * A scheduler named `name` registered (as `key`): the other remote connections of that name
   * get no more jobs (drained). They are most often the stale connection of the same scheduler at
   * a bus that died and is not yet known gone (5 beats): without this the leader fills the slots
   * that the scheduler's re-registration freed there (its jobs re-attached to the new connection)
   * with the most urgent waiting jobs, mailed to a dead bus, stuck until that bus is found gone
   * and the recovery grace ends. What they still hold stays theirs (no job requeued here: a
   * second live scheduler of that name keeps running its jobs; it only gets no new ones). A
   * scheduler registered at the leader itself is seen by the leader's 1-second watch.
   */
  #supersede(name: string, key: string): void {
    for (const [other, otherName] of this.#names) {
      if (other !== key && otherName === name) {
        this.#names.delete(other); // drained once
        this.#leader?.drainScheduler(other);
      }
    }
  }

  /** The schedulers of buses that stopped beating: their jobs wait for them by name. */
  async #reapGoneBuses(): Promise<void> {
    if (++this.#ticks % 60 === 0) await this.#store.pruneLog(LOG_KEPT_MS).catch(() => 0);
    const gone = await this.#store.goneBuses().catch(() => []);
    const leader = this.#leader;
    if (!leader || this.#closed) return;
    for (const bus of gone) {
      for (const key of this.#remote.get(bus) ?? []) {
        leader.removeScheduler(key, { recover: true });
        this.#names.delete(key);
      }
      this.#remote.delete(bus);
      this.#options.log(`bus ${bus} is gone: its schedulers' jobs wait for them to reconnect`);
      // Only silent, perhaps (a long pause): if it lives, it registers its schedulers again.
      this.#mail(bus, { kind: "leader", bus: this.#store.busId, epoch: 0 });
    }
  }

  #demote(why: string): void {
    clearInterval(this.#watch);
    this.#watch = undefined;
    this.#leader?.close();
    this.#leader = undefined;
    const follower = this.#follow();
    for (const peer of this.#options.localSchedulers()) {
      follower.addScheduler(peer, this.#runningAt(peer.name));
    }
    this.#placer = follower;
    this.#options.setPlacer(follower);
    this.#options.log(`follows: ${why}`);
    this.#saidFollows = true;
    if (!this.#closed) this.#timer = setTimeout(() => this.#tryLead(), 1000);
  }

  #onBatch(batch: ClusterBatch): void {
    if (batch.events.length > 0) this.#options.onEvents(batch.events);
    const leader = this.#leader;
    if (leader) {
      if (batch.accepted.length > 0) leader.admitStored(batch.accepted);
      for (const message of batch.mail) this.#lead(leader, message);
    } else {
      for (const message of batch.mail) this.#follower?.deliver(message);
    }
  }

  /** The leader takes a follower's message. */
  #lead(leader: Dispatcher, message: ClusterMail): void {
    switch (message.kind) {
      case "register": {
        const key = `${message.bus}/${message.client}`;
        leader.removeScheduler(key, { recover: true }); // registered again (a new leader asked)
        this.#supersede(message.name, key); // before its re-attached jobs free slots there
        leader.addScheduler(this.#remotePeer(message), message.running);
        const keys = this.#remote.get(message.bus) ?? new Set();
        this.#remote.set(message.bus, keys.add(key));
        this.#names.set(key, message.name);
        return;
      }
      case "report":
        leader.schedulerEvent(`${message.bus}/${message.client}`, message.event);
        if (isFinalState(message.event.state)) { // stored with this batch: acknowledged
          this.#mail(message.bus, {
            kind: "reported",
            client: message.client,
            ids: [message.event.id],
          });
        }
        return;
      case "gone":
        leader.removeScheduler(`${message.bus}/${message.client}`);
        this.#remote.get(message.bus)?.delete(`${message.bus}/${message.client}`);
        this.#names.delete(`${message.bus}/${message.client}`);
        return;
      case "drain":
        leader.drainScheduler(`${message.bus}/${message.client}`);
        return;
      case "op": {
        const answer = this.#answer(leader, message);
        this.#mail(message.bus, { kind: "answer", ask: message.ask, ...answer });
        return;
      }
    }
  }

  #answer(
    leader: Dispatcher,
    message: ClusterMail & { kind: "op" },
  ): { ok: boolean; reason?: string; count?: number } {
    const owner = message.owner ?? undefined;
    if (message.op === "drain") {
      const count = leader.drainSchedulerNamed(message.id);
      return count > 0 ? { ok: true, count } : { ok: false, count, reason: "unknown scheduler" };
    }
    const result = message.op === "cancel"
      ? leader.cancel(owner, message.id)
      : leader.setPriority(owner, message.id, message.priority ?? 0);
    return result.ok ? { ok: true } : { ok: false, reason: result.reason };
  }

  /** A follower's scheduler as the leader's dispatcher sees it: frames go through the log. */
  #remotePeer(message: ClusterMail & { kind: "register" }): SchedulerPeer {
    const { bus, client } = message;
    return {
      client: `${bus}/${client}`,
      name: message.name,
      protocol: 2,
      slots: message.slots,
      labels: message.labels,
      commands: message.commands,
      canSend: () => true,
      sendJob: (id, payload, attempt) =>
        this.#mail(bus, { kind: "job", client, id, payload, attempt }),
      sendCancel: (id, reason) => this.#mail(bus, { kind: "cancel", client, id, reason }),
    };
  }

  #mail(to: string, message: ClusterMail): void {
    this.#store.mail(to, message);
    this.#options.schedule();
  }

  /** The jobs the store says are at a scheduler of this name. */
  #runningAt(name: string): string[] {
    return this.#options.tracked.unfinished()
      .filter((job) => job.atScheduler && job.scheduler === name)
      .map((job) => job.id);
  }
}
