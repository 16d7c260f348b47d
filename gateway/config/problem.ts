/** One thing wrong with a configuration, as `config check`, `start` and reload report it. */
export interface ConfigProblem {
  /** Field path, e.g. `devices[3].heartbeatInterval`. */
  path: string;
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}
