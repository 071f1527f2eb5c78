/**
 * inputs: the step's inputs read once (takeInputs, which then clears them from the environment) into one typed,
 * validated, immutable Settings object (settings.ts, with the single-value parsers in fields.ts and the `builders`
 * input's machines lines in machines.ts), the names of inputs, outputs and state keys (constants.ts), SSH key and
 * known_hosts parsing (keys.ts), shell-like word splitting, the errors a user can act on, and how a builder is named
 * everywhere and the one record of a configured builder that every later stage takes (builder.ts). A new input starts here.
 * May import: base.
 */

export { Input, MARKER, NOTHING_TO_UNDO, Output, StateKey } from './constants.js'
export { SetupError } from './errors.js'
export {
  fingerprint,
  type HostKey,
  type KnownHostsLine,
  knownHostsLineMatches,
  knownHostsName,
  type PrivateKey,
  renderKnownHostsLine
} from './keys.js'
export {
  AUTO,
  type CanarySettings,
  type CanaryThresholds,
  type Evaluate,
  type InputReader,
  parseCanarySettings,
  parseSettings,
  withRunnerSystem,
  type Protocol,
  type PushTarget,
  type Settings,
  type SettingsDefaults,
  type Strategy,
  takeBuildInputs,
  takeCanaryInputs,
  wantsBuild
} from './settings.js'
export {
  type Builder,
  type BuilderAccess,
  type BuilderLoad,
  type BuilderRequest,
  builderNamed,
  builderWith,
  byFreeCapacity,
  capacities,
  type ConfiguredBuilder,
  configureBuilders,
  freeCapacity,
  givenBuilders,
  hostPort,
  label,
  loadedSpeedFactors
} from './builder.js'
export { nixBeside } from './remote-program.js'

/** What a Nix system type and a system feature may look like, for values a builder reports too. */
export { FEATURE, SYSTEM } from './fields.js'
export { pushPlace } from './fields.js'
