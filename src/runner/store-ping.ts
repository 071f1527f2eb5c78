import { NIX_FEATURES, parseStoreInfo, sshDestination, storeInfoArgs } from '../nix/index.js'
import { nixEnvironment, type Plan } from './plan.js'
import type { ConfiguredBuilder } from './render.js'
import type { RunnerFacts } from './probe.js'
import { runCommand } from '../base/index.js'
import { label } from '../inputs/index.js'

/** The builder's store as the account that offloads (root for a daemon) reaches it through the written ssh config. */
export interface StoreReach {
  storeUri: string
  builder: string
  /** The check, as the log and the error quote it. */
  command: string
  ok: boolean
  ms: number
  version?: string
  /** Reported by the store check from Nix 2.15 only. */
  trusted?: boolean
  /** Nix's last lines when it failed. */
  error?: string
}

/**
 * The seed's `sudo nix store ping --store ssh-ng://user@alias` check (spelled `nix store info` from Nix 2.19, see
 * src/nix-cli.ts), for every builder at once. It goes through the same ssh config, key file and known_hosts the
 * daemon will use, as the same account, so it catches what the action's own SSH client cannot: permissions, an ssh
 * config of root's that overrides ours, a sudo that does not work.
 */
/** How long the store check may take: the builder answered the preflight moments ago. */
const STORE_PING_TIMEOUT_MS = 60_000

/**
 * Without `facts` (started before the runner probe ends, for the remote-store plan, which needs no sudo): `nix` from
 * PATH, and the `store ping` form that every version accepts.
 */
export async function pingStores(
  plan: Plan,
  facts: RunnerFacts | undefined,
  signal?: AbortSignal
): Promise<StoreReach[]> {
  if (plan.path === 'remote-store' && plan.sshConfigFile !== undefined) {
    const configFile = plan.sshConfigFile
    return Promise.all(plan.builders.map(builder => sshCheck(configFile, builder, signal)))
  }
  const viaSudo = plan.asRoot && facts?.isRoot !== true
  const check = storeInfoArgs({
    implementation: facts?.nixImplementation ?? 'nix',
    version: facts?.nixVersion ?? ''
  })
  const nixPath = facts?.nixPath ?? 'nix'
  return Promise.all(
    plan.builders.map(async builder => {
      const args = [...NIX_FEATURES, ...check, '--store', builder.storeUri]
      const started = Date.now()
      // Bounded: a builder that stops answering after the preflight must not turn this into a six-hour job.
      const bound = { timeoutMs: STORE_PING_TIMEOUT_MS, ...(signal === undefined ? {} : { signal }) }
      const result = viaSudo
        ? await runCommand('sudo', ['-n', nixPath, ...args], bound)
        : await runCommand(nixPath, args, { ...bound, env: nixEnvironment(plan, process.env) })
      const reach: StoreReach = {
        storeUri: builder.storeUri,
        builder: label(builder),
        command: `nix ${check.join(' ')} --store ${builder.storeUri}`,
        ok: result.code === 0,
        ms: Date.now() - started
      }
      const { version, trusted } = parseStoreInfo(result.stdout.toString(), result.stderr)
      if (version !== undefined) reach.version = version
      if (trusted !== undefined) reach.trusted = trusted
      if (!reach.ok) reach.error = result.stderr.trim().split('\n').slice(-3).join(' / ')
      if (result.timedOut === true) {
        reach.error =
          `it hung: no answer within ${STORE_PING_TIMEOUT_MS / 1000} s (the builder accepted the SSH connection ` +
          'but its Nix did not answer: is its nix-daemon running and responsive?)'
      }
      return reach
    })
  )
}

/**
 * The remote-store plan's check: `ssh -F <its config> <user@alias> true` as the runner user, which opens the SSH
 * master the build then uses (the preflight has asked the builder's store already, over the action's own SSH client).
 * Without the runner's `nix` and the builder's `nix-daemon --stdio` it is the shortest way to the master: about 35 ms
 * sooner on the lab than `nix store ping`, on the path every small build waits on.
 */
async function sshCheck(
  configFile: string,
  builder: ConfiguredBuilder,
  signal: AbortSignal | undefined
): Promise<StoreReach> {
  const destination = sshDestination(builder.storeUri)
  const started = Date.now()
  const result = await runCommand('ssh', ['-F', configFile, destination, 'true'], {
    timeoutMs: STORE_PING_TIMEOUT_MS,
    ...(signal === undefined ? {} : { signal })
  })
  const reach: StoreReach = {
    storeUri: builder.storeUri,
    builder: label(builder),
    command: `ssh -F ${configFile} ${destination} true`,
    ok: result.code === 0,
    ms: Date.now() - started
  }
  if (!reach.ok)
    reach.error = result.stderr.trim().split('\n').slice(-3).join(' / ') || `exit code ${result.code}`
  if (result.timedOut === true) reach.error = `it hung: no answer within ${STORE_PING_TIMEOUT_MS / 1000} s`
  return reach
}
