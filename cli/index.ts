/**
 * The top layer: the `linli` command line (cli/linli.ts, the package's `bin`)
 * composes the gateway and, for `--demo`, the simulator. Nothing imports cli/;
 * this surface is the demo composition, for anyone embedding the demo.
 */
export {
  DEMO_HOUSEHOLDS,
  DEMO_OPERATOR,
  DEMO_SITE,
  demoConfig,
  HAND_PENDANT,
  startDemoCommunity,
} from "./demo.js";
