import * as core from '@actions/core'
import { applyPlan } from './apply.js'
import type { Plan } from './plan.js'
import type { RunnerFacts } from './probe.js'
import { label } from '../inputs/index.js'
import type { Journal } from './state.js'
import { pingStores, type StoreReach } from './store-ping.js'
import { logInfo, phase } from '../base/index.js'

/**
 * Configures the runner for the builders (the plan, applied and journaled) and pings every builder's store through
 * the written config as the account that offloads (which opens the multiplexing masters). Later steps see the
 * builders only once `exportNixConfig` runs.
 */
export async function configureRunner(
  plan: Plan,
  facts: RunnerFacts | undefined,
  options: { announce: boolean; signal?: AbortSignal } = { announce: true }
): Promise<{ stores: StoreReach[]; journal: Journal }> {
  if (options.announce && facts !== undefined) announcePlan(plan, facts)
  const journal = await phase('configure', applyPlan(plan))
  return { stores: await phase('store check', pingStores(plan, facts, options.signal)), journal }
}

/** Says whom the runner is configured for and how, each builder's alias, and the plan's warnings. */
export function announcePlan(plan: Plan, facts: RunnerFacts): void {
  const who =
    plan.path === 'remote-store'
      ? `${facts.userName} (its own nix opens the SSH connections, with ${plan.sshConfigFile ?? 'an ssh config'})`
      : facts.store === 'daemon'
        ? 'root (the nix-daemon opens the SSH connections)'
        : facts.userName
  logInfo(`Configuring for ${who} (${plan.path}).`)
  for (const builder of plan.builders) {
    logInfo(`Builder ${builder.storeUri} → ${label(builder)} (${builder.systems.join(', ')})`)
  }
  for (const warning of plan.warnings) core.warning(warning, { title: 'nix-offload' })
}

/** Exports NIX_CONFIG with the plan's settings (trusted-client path) to this step's builds and to later steps. */
export function exportNixConfig(plan: Plan): void {
  if (plan.nixConfig === '') return
  const existing = process.env.NIX_CONFIG ?? ''
  core.exportVariable('NIX_CONFIG', existing === '' ? plan.nixConfig : `${existing}\n${plan.nixConfig}`)
}
