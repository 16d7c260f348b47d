/**
 * The last good configuration: a copy of the configuration the gateway last ran with (validated,
 * applied at a start or a reload), kept in its data directory. A start whose site file is refused
 * runs on it instead of leaving the site without a gateway (docs/reload.md "A refused file at
 * start"). The copy holds the file's secrets (passwords, `${VAR}` values substituted): it is
 * written 0600, as the journal is.
 */
import path from "node:path";
import { fsyncDir, type JournalFs, nodeFs, writeFully } from "../journal/fs.js";
import { validateConfig } from "./load.js";
import type { Config } from "./schema.js";

/** What the copy keeps: the standalone input of a valid file (LoadedConfig.input). */
export type ConfigInputCopy = Record<string, unknown>;

export const LAST_GOOD_FILE = "config.last-good.json";
/** Bumped when the copy's layout changes; a newer one is refused, as the journal refuses a newer format. */
export const LAST_GOOD_FORMAT = 1;

export interface LastGood {
  config: Config;
  /** The site file it came from, as the gateway was given it. */
  source: string;
  /** When it was written (ms since the epoch). */
  savedAt: number;
  /** The copy's own path. */
  file: string;
}

/**
 * Every `${NAME}` read back as itself: the copy holds values already substituted, and a secret
 * that happens to contain `${...}` must not be substituted a second time.
 */
const literalEnv: NodeJS.ProcessEnv = new Proxy({}, { get: (_t, name) => `\${${String(name)}}` });

/** Writes the copy atomically (temp file, fsync, rename, fsync of the directory), mode 0600. */
export function saveLastGood(
  dataDir: string,
  input: ConfigInputCopy,
  source: string,
  fsx: JournalFs = nodeFs,
): void {
  fsx.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, LAST_GOOD_FILE);
  const tmp = `${file}.tmp`;
  const body = Buffer.from(
    `${JSON.stringify({ format: LAST_GOOD_FORMAT, source, savedAt: Date.now(), input })}\n`,
    "utf8",
  );
  const fd = fsx.openSync(tmp, "w", 0o600);
  try {
    writeFully(fsx, fd, body, 0);
    fsx.fsyncSync(fd);
  } finally {
    fsx.closeSync(fd);
  }
  fsx.renameSync(tmp, file);
  fsyncDir(fsx, dataDir);
}

/**
 * Reads the copy: null when there is none; an Error saying why when it cannot be used (unreadable,
 * not JSON, a newer format, no longer valid): the start then refuses as it would without a copy.
 */
export function loadLastGood(dataDir: string, fsx: JournalFs = nodeFs): LastGood | null {
  const file = path.join(dataDir, LAST_GOOD_FILE);
  let text: string;
  try {
    text = fsx.readFileSync(file).toString("utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`last good configuration ${file}: cannot read it: ${(err as Error).message}`);
  }
  let doc: { format?: unknown; source?: unknown; savedAt?: unknown; input?: unknown };
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`last good configuration ${file}: not JSON: ${(err as Error).message}`);
  }
  if (typeof doc?.format !== "number" || doc.format > LAST_GOOD_FORMAT)
    throw new Error(
      `last good configuration ${file}: format ${String(doc?.format)} is newer than this gateway's (${LAST_GOOD_FORMAT}): written by a newer version`,
    );
  // Checked again as a site file is: the copy of an older version gets this version's defaults, and
  // a damaged copy is refused rather than run.
  const config = validateConfig(doc.input, file, literalEnv, null);
  return {
    config,
    source: typeof doc.source === "string" ? doc.source : "(unknown)",
    savedAt: typeof doc.savedAt === "number" ? doc.savedAt : 0,
    file,
  };
}
