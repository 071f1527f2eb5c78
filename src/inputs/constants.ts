/** Input names, exactly as action.yml spells them: other tools depend on them. */
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
  Mode = 'mode',
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
