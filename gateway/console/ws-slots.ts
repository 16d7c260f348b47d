/**
 * The console's WebSocket slots (docs/security.md "Limits", docs/console.md). A socket not yet
 * logged in as an operator lives up to connectTimeout (5 s); without these rules four LAN hosts
 * holding 64 such sockets each (the HTTP per-address share) filled all 256 slots, and the
 * operators' consoles got 503 while a fire alarm went unseen.
 *
 * - at most `perAddress` sockets not yet logged in per address (beyond: refused);
 * - at most `unauthenticated` of them in all: the rest of `total` is a reserve only logged-in
 *   operators hold;
 * - when that share (or the whole pool) is full, a new socket takes the slot of the oldest
 *   not-logged-in socket of the address that holds the most of them: a flood from a few hosts
 *   evicts its own sockets, not the one an operator is logging in on;
 * - when every slot is a logged-in operator's, a new socket is refused.
 */

export interface WebSocketSlotLimits {
  total: number;
  unauthenticated: number;
  perAddress: number;
}

export type SlotRefusal = "per-address" | "total";

export class WebSocketSlot {
  /** pending: not logged in yet; operator: logged in as an operator; released: closed or evicted. */
  state: "pending" | "operator" | "released" = "pending";
  constructor(
    readonly address: string,
    /** Closes the socket (an eviction). */
    readonly close: () => void,
  ) {}
}

export class WebSocketSlots {
  private operators = 0;
  private pendingCount = 0;
  /** Sockets not logged in yet, by address, each address's oldest first (bounded by `unauthenticated`). */
  private readonly pending = new Map<string, Set<WebSocketSlot>>();

  constructor(
    readonly limits: WebSocketSlotLimits,
    /** A socket closed to make room for a newer one (counted and logged by the caller). */
    private readonly onEvicted: (address: string) => void = () => {},
  ) {
    if (limits.unauthenticated >= limits.total || limits.perAddress > limits.unauthenticated)
      throw new Error("console WebSocket slots: the reserve for operators must not be empty");
  }

  /** Open sockets: logged in and not. */
  get size(): number {
    return this.operators + this.pendingCount;
  }

  get unauthenticated(): number {
    return this.pendingCount;
  }

  /** A slot for a new socket from `address` (not logged in yet), or why there is none. */
  admit(address: string, close: () => void): WebSocketSlot | SlotRefusal {
    const mine = this.pending.get(address);
    if (mine !== undefined && mine.size >= this.limits.perAddress) return "per-address";
    if (this.operators >= this.limits.total) return "total";
    if (this.pendingCount >= this.limits.unauthenticated || this.size >= this.limits.total) this.evict();
    const slot = new WebSocketSlot(address, close);
    let set = this.pending.get(address);
    if (set === undefined) this.pending.set(address, (set = new Set()));
    set.add(slot);
    this.pendingCount++;
    return slot;
  }

  /** Logged in as an operator: the slot leaves the unauthenticated share (may use the reserve). */
  loggedIn(slot: WebSocketSlot): void {
    if (slot.state !== "pending") return;
    this.unpend(slot);
    slot.state = "operator";
    this.operators++;
  }

  /** The socket closed (idempotent). */
  release(slot: WebSocketSlot): void {
    if (slot.state === "pending") this.unpend(slot);
    else if (slot.state === "operator") this.operators--;
    slot.state = "released";
  }

  private unpend(slot: WebSocketSlot): void {
    const set = this.pending.get(slot.address);
    if (set?.delete(slot)) {
      this.pendingCount--;
      if (set.size === 0) this.pending.delete(slot.address);
    }
  }

  /** Closes the oldest not-logged-in socket of the address holding the most (at most `unauthenticated` addresses scanned). */
  private evict(): void {
    let most: Set<WebSocketSlot> | undefined;
    for (const set of this.pending.values()) if (most === undefined || set.size > most.size) most = set;
    const victim = most?.values().next().value;
    if (victim === undefined) return;
    this.release(victim);
    this.onEvicted(victim.address);
    victim.close();
  }
}
