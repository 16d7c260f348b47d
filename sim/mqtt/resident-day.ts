/**
 * When an elderly resident's front door (DS-10, datasheets/ds10-door.md "Behaviour worth
 * simulating") opens and closes over a day: morning shopping, an afternoon walk, rarely at night.
 * A pure function of the random stream, so the same seed gives the same day. Times are hours of
 * the simulated day (0 = midnight at the start of day 0); the caller maps them onto real time.
 */
import type { Random } from "./random.js";

/** One passage through the door: it opens at `hour` and closes again after `openS` seconds. */
export interface DoorPassage {
  /** Hours since midnight of day 0. */
  hour: number;
  /** Simulated seconds the door stays open (the resident goes through, locks up). */
  openS: number;
  why: "leaves for shopping" | "back from shopping" | "leaves for a walk" | "back from a walk" | "at night";
}

/** Morning shopping leaves between these hours and takes this long (hours). */
const SHOPPING = { from: 8, to: 10, minH: 0.75, maxH: 2 };
/** The afternoon walk. */
const WALK = { from: 14.5, to: 16.5, minH: 0.5, maxH: 1.5 };
/** The night (22:00-06:00): a door opening on some nights only (rubbish out, a neighbour). */
const NIGHT = { from: 22, to: 30, chance: 0.1 };

/**
 * The longest the door can stay shut on this schedule, hours: from the earliest return of a
 * walk (15:00) to the latest shopping trip next morning (10:00), 19 h (on the first day, from
 * midnight to that trip, 10 h). A welfare period no longer than that (in the same compressed
 * time) would rightly raise a check on a resident living a normal day.
 */
export const LONGEST_QUIET_HOURS = 24 - (WALK.from + WALK.minH) + SHOPPING.to;

const between = (rng: Random, a: number, b: number) => a + rng() * (b - a);

/** The door passages of `days` days, in time order. */
export function residentDays(rng: Random, days: number): DoorPassage[] {
  const out: DoorPassage[] = [];
  const open = () => between(rng, 8, 30);
  for (let d = 0; d < days; d++) {
    const base = 24 * d;
    const shop = base + between(rng, SHOPPING.from, SHOPPING.to);
    const back = shop + between(rng, SHOPPING.minH, SHOPPING.maxH);
    const walk = base + between(rng, WALK.from, WALK.to);
    const home = walk + between(rng, WALK.minH, WALK.maxH);
    out.push(
      { hour: shop, openS: open(), why: "leaves for shopping" },
      { hour: back, openS: open(), why: "back from shopping" },
      { hour: walk, openS: open(), why: "leaves for a walk" },
      { hour: home, openS: open(), why: "back from a walk" },
    );
    // Drawn every day, used on some: one day's night never shifts the next day's draws.
    const night = base + between(rng, NIGHT.from, NIGHT.to);
    if (rng() < NIGHT.chance && night < 24 * days) out.push({ hour: night, openS: open(), why: "at night" });
  }
  return out.sort((a, b) => a.hour - b.hour);
}
