/**
 * How often an account may have `list` pages built (docs/topics.md "Which alerts are open"): a
 * token bucket per requesting account (an operator's username; every client of the upstream
 * broker is the one account `upstream`). A page is built and serialised on the gateway's one
 * thread, between alerts: a console in a loop (or a script) asking continuously would keep it busy
 * and push ~20 KB a page at its connection, so beyond the bound a request is refused (counted,
 * `rate-limited`, with when to ask again) instead of answered.
 *
 * LIST_BURST pages at once: a whole sync of a site with 12,000 open alerts of one priority, or a
 * few consoles of one account syncing together. Then LIST_PER_SECOND pages a second: a console
 * resolving a mismatch again every few seconds (it backs off, gateway/console/public/sync.js) is
 * never refused on a usual site.
 *
 * Bounded: at most MAX_ACCOUNTS buckets (accounts come from the configuration; buckets that are
 * full again carry nothing and are forgotten first, else the oldest).
 */
import { TokenBucket } from "./broker/token-bucket.js";

export const LIST_BURST = 60;
export const LIST_PER_SECOND = 2;
const MAX_ACCOUNTS = 1000;

export class ListBudget {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perSecond = LIST_PER_SECOND,
    private readonly burst = LIST_BURST,
    /** Monotonic ms: a step of the wall clock must neither refuse for an hour nor refill at once. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** 0 when `account` may have a page now (the page taken), else ms until it may ask again. */
  take(account: string): number {
    const t = this.now();
    let b = this.buckets.get(account);
    if (b === undefined) {
      if (this.buckets.size >= MAX_ACCOUNTS) this.evict(t);
      b = new TokenBucket(this.perSecond, this.burst, t);
      this.buckets.set(account, b);
    }
    return b.take(t) ? 0 : Math.max(1, b.waitMs(t));
  }

  private evict(t: number): void {
    for (const [k, b] of this.buckets) if (b.full(t)) this.buckets.delete(k);
    if (this.buckets.size < MAX_ACCOUNTS) return;
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }

  get tracked(): number {
    return this.buckets.size;
  }
}
