/**
 * nix: everything about Nix itself. Its command line and version rules (nix-cli.ts: which command each version has),
 * reading its internal-json log (nix-log.ts) into a ledger of derivation → machine, times and copies (ledger.ts),
 * running `nix build` (build.ts), and classifying its failure messages into causes with fixes (diagnosis*.ts: a new
 * wording is a row in diagnosis-rules.ts).
 * May import: base, inputs.
 */

export {
  checksOnlyLocally,
  compareVersions,
  CONFIG_SHOW_SHELL,
  configShowArgs,
  describeRelease,
  multiplexHazard,
  NIX_FEATURES,
  type NixConfig,
  type NixRelease,
  parseConfigShow,
  parseNixVersion,
  parseStoreInfo,
  settingList,
  type StoreInfo,
  storeInfoArgs
} from './nix-cli.js'
export type { BuildRecord, BuildStatus, CopyRecord } from './ledger.js'
export { type BuildOutcome, runBuild } from './build.js'
export { builderOffer, diagnose, type Diagnosis, orderDiagnoses } from './diagnosis.js'
