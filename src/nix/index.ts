/**
 * nix: everything about Nix itself. Its command line and version rules (nix-cli.ts: which command each version has),
 * reading its internal-json log (nix-log.ts) into a ledger of derivation → machine, times and copies (ledger.ts),
 * running `nix build` through the build hook (build.ts, with the `args` split by what each option acts on), in a
 * builder's own store (store-build.ts) from the derivations one evaluation selected, or the builder's own `nix build`
 * of a flake sent there (builder-eval.ts), which of them serves a run and where (strategy.ts, with that evaluation and
 * the derived paths each Nix takes back), and the live progress of a build and its times per builder (progress.ts).
 * May import: base, inputs.
 */

export {
  builderNix,
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
  parsePathInfo,
  type PathInfo,
  parseStoreInfo,
  settingList,
  sshDestination,
  type StoreInfo,
  storeInfoArgs
} from './nix-cli.js'
export type { BuildRecord, BuildStatus, CopyPhase, CopyRecord, HookPhases, LogSpan } from './ledger.js'
export {
  asksForOutLinks,
  type BuildOutcome,
  fits,
  lastError,
  type MachineNeed,
  type MachineOffer,
  runBuild
} from './build.js'
export {
  buildInStores,
  type StoreBuildOptions,
  type StoreBuildOutcome,
  type StoreProof
} from './store-build.js'
export { buildOnBuilder, chooseEvaluatingBuilder } from './builder-eval.js'
export {
  type ChosenStrategy,
  chooseStrategy,
  type InstallableLookup,
  installableNeeds,
  remoteStoreObstacle,
  type RunnerTrust,
  type StoreObstacle,
  type StoreOffer,
  type StoreRoute,
  type StrategyChoice,
  type StrategyQuestion
} from './strategy.js'
export { derivationName, isStorePath, storeDirOf } from './nix-log.js'
export { sshOptionsOf, type Transfer, transferBytes } from './store-proof.js'
export { type BuildTimes, buildTimes, formatBytes, type BuilderNames } from './progress.js'
