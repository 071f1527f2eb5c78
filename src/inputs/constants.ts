/** Input names, exactly as action.yml and canary/action.yml spell them: other tools depend on them. */
export enum Input {
  Host = 'host',
  Port = 'port',
  User = 'user',
  SshPrivateKey = 'ssh-private-key',
  HostPublicKey = 'host-public-key',
  Protocol = 'protocol',
  RemoteProgram = 'remote-program',
  Systems = 'systems',
  MaxJobs = 'max-jobs',
  SpeedFactor = 'speed-factor',
  SupportedFeatures = 'supported-features',
  MandatoryFeatures = 'mandatory-features',
  Builders = 'builders',
  KnownHosts = 'known-hosts',
  BuildersUseSubstitutes = 'builders-use-substitutes',
  Installables = 'installables',
  Args = 'args',
  LocalJobs = 'local-jobs',
  RequireRemote = 'require-remote',
  Rebuild = 'rebuild',
  Summary = 'summary',
  SkipUnhealthy = 'skip-unhealthy',
  CanaryPayloadMb = 'canary-payload-mb',
  MaxConnectMs = 'max-connect-ms',
  MaxBuildSeconds = 'max-build-seconds',
  MinFreeGb = 'min-free-gb',
  MinFreeGib = 'min-free-gib',
  TrendFactor = 'trend-factor',
  Multiplex = 'multiplex',
  Strategy = 'strategy',
  CopyBack = 'copy-back',
  Evaluate = 'evaluate',
  Fallback = 'fallback',
  Retries = 'retries',
  PushTo = 'push-to',
  PushKey = 'push-key'
}

/** The canary's own inputs: its thresholds, which the build has no use for. */
const CANARY_THRESHOLDS: readonly Input[] = [
  Input.CanaryPayloadMb,
  Input.MaxConnectMs,
  Input.MaxBuildSeconds,
  Input.MinFreeGb,
  Input.TrendFactor
]

/** The main action's inputs (action.yml): all but the canary's thresholds. */
export const BUILD_INPUTS: readonly Input[] = Object.values(Input).filter(
  name => !CANARY_THRESHOLDS.includes(name)
)

/**
 * The canary action's inputs (canary/action.yml): the builders and how to reach them, as the build takes them, what
 * the step shows, and its thresholds. The build's other inputs read as empty there, so their defaults apply.
 */
export const CANARY_INPUTS: readonly Input[] = [
  Input.Host,
  Input.Port,
  Input.User,
  Input.SshPrivateKey,
  Input.HostPublicKey,
  Input.Protocol,
  Input.RemoteProgram,
  Input.Systems,
  Input.MaxJobs,
  Input.SpeedFactor,
  Input.SupportedFeatures,
  Input.MandatoryFeatures,
  Input.Builders,
  Input.KnownHosts,
  Input.BuildersUseSubstitutes,
  Input.Summary,
  Input.Multiplex,
  ...CANARY_THRESHOLDS
]

/**
 * `mode`, an input of neither action: a workflow that sets `mode: canary` on the main action is told to use the canary
 * action (CANARY_ACTION) instead of running a build it did not ask for.
 */
export const MODE = 'mode'

/** How a workflow names the canary action. */
export const CANARY_ACTION = 'nix-offload/nix-offload/canary@v0'

export enum Output {
  OutPaths = 'out-paths',
  RemoteBuilds = 'remote-builds',
  LocalBuilds = 'local-builds',
  FailedBuilds = 'failed-builds',
  Confirmed = 'confirmed',
  Report = 'report',
  BuildersHealthy = 'builders-healthy',
  Healthy = 'healthy'
}

export enum StateKey {
  /** The undo journal: every change main made to the runner, in order. */
  Journal = 'journal',
  /** The long-running processes main started that still run: what post stops if main was killed. */
  Children = 'children'
}

/** What the post step says when main left it nothing to undo (post.ts reads the state without the undo code). */
export const NOTHING_TO_UNDO = 'nix-offload: nothing to undo (the main step left nothing on this runner).'

/** Marks the lines the action adds to files it shares with the user (ssh config, nix.conf). */
export const MARKER = 'nix-offload'
