/**
 * What an incident kind is to the runner: the model it needs, the devices it may pick, the alert
 * it must cause and how it is started and undone. One entry per kind, in mqtt.ts and modbus.ts.
 */
import type { Fleet } from "../../fleet.js";
import type { Random } from "../../mqtt/random.js";
import type { SiteModel } from "../../site.js";
import type { AlertMatcher } from "../matcher.js";
import type { IncidentPhase } from "../schema.js";

export type IncidentKind = IncidentPhase["do"];

/** An incident phase of one kind (its `do` narrowed). */
export type IncidentOf<K extends IncidentKind> = IncidentPhase & { do: K };

/** What a run of an incident may use of the scenario run. */
export interface IncidentContext {
  readonly fleet: Fleet;
  readonly site: SiteModel;
  readonly matcher: AlertMatcher;
  /** This incident's own seeded stream (its phase and target): the same whenever it runs. */
  readonly rng: Random;
  /** Fails the run by name (an incident that cannot happen as the scenario asks). */
  error(message: string): void;
  /** Runs `fn` after `ms` unless the run is stopped first. */
  after(ms: number, fn: () => unknown): Promise<void>;
  /**
   * Registers the alert(s) the incident must cause: the scenario's `expect`, else `defaults`,
   * else the kind's code. `dueAt` per code where the datasheet gives an alert a delay of its own.
   */
  expectFor(
    p: IncidentPhase,
    label: string,
    key: string,
    at: number,
    dueAt: number | Record<string, number>,
    defaults?: string[],
  ): void;
  /** Undoes the incident at the end of the run (the site is left as it was found). */
  onRestore(fn: () => unknown): void;
}

/** One target of an incident: its device (or bus) id, its label in the report, when it happened. */
export interface IncidentTarget {
  readonly id: string;
  readonly label: string;
  readonly at: number;
}

export interface IncidentSpec<K extends IncidentKind> {
  /** The device model it needs, as a refusal names it. */
  readonly model: string;
  /** Candidate target ids when the phase names none. */
  readonly pool: (fleet: Fleet) => string[];
  /**
   * The alert it must cause, from the datasheets' "alerts the gateway is expected to raise" tables
   * (the codes are the contract; how the gateway decides is its business), or "none".
   */
  readonly code: string;
  /** Why this site cannot carry the phase out on these targets, or undefined (checked before the run). */
  readonly check?: (
    p: IncidentOf<K>,
    pool: readonly string[],
    fleet: Fleet,
    site: SiteModel,
  ) => string | undefined;
  /** Starts the incident on one target: registers what it must cause and how it is undone. */
  readonly run: (ctx: IncidentContext, p: IncidentOf<K>, target: IncidentTarget) => unknown;
}

/** Some of the kinds (one transport's): each entry typed by its own kind, no unknown kind. */
export type IncidentTable = { readonly [K in IncidentKind]?: IncidentSpec<K> };
