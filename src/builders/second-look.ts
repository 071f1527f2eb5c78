import type { Diagnosis } from '../diagnosis/index.js'
import type { PreflightResult } from './preflight-verdict.js'
import { builderNamed, type ConfiguredBuilder } from '../inputs/index.js'

/**
 * A second look at the builders Nix could not reach during the build. Nix's log cannot say why: from Nix 2.16 it
 * reads `failed to start SSH connection to '<alias>'` whether the builder is down, its host key changed or it refused
 * the key (seen on 2.26 and 2.34), and ssh's own words go to the nix-daemon's log (docs/nix.md, "Failure wordings").
 * Every configured builder passed the preflight, so the action runs that same check again now and names what changed.
 */

/** The preflight's SSH check of one builder, run again and judged as the preflight judges it. */
export type CheckBuilder = (builder: ConfiguredBuilder) => Promise<PreflightResult>

/** What the second look needs from the outside, injected so that it can be tested without SSH. */
export interface SecondLookTools {
  check: CheckBuilder
  /** Where the one line per builder checked goes (`core.info` in the action). */
  info: (line: string) => void
}

/**
 * Checks each builder an unreachable diagnosis names, once, and returns the diagnoses with those revised: a cause found
 * now becomes the first line (the preflight's own message: builder, cause, fix); a builder that answers keeps what Nix
 * said first, with a line saying so.
 */
export async function secondLook(
  diagnoses: readonly Diagnosis[],
  builders: readonly ConfiguredBuilder[],
  tools: SecondLookTools
): Promise<Diagnosis[]> {
  const lost = new Map<string, ConfiguredBuilder>()
  for (const diagnosis of diagnoses) {
    if (diagnosis.cause !== 'builder-unreachable') continue
    const builder = builderNamed(builders, diagnosis.machine)
    if (builder !== undefined) lost.set(builder.storeUri, builder)
  }
  if (lost.size === 0) return [...diagnoses]
  const found = new Map<string, PreflightResult>()
  await Promise.all(
    [...lost.values()].map(async builder => {
      const result = await checkSafely(builder, tools.check)
      if (result === undefined) return
      found.set(builder.storeUri, result)
      tools.info(
        `Second look at builder ${result.builder}, which Nix could not connect to during the build: ` +
          `${result.healthy ? 'reachable now' : (result.cause ?? 'unhealthy')}.`
      )
    })
  )
  return diagnoses.map(diagnosis => {
    const result = diagnosis.cause === 'builder-unreachable' ? found.get(diagnosis.machine ?? '') : undefined
    return result === undefined ? diagnosis : revised(diagnosis, result)
  })
}

function revised(diagnosis: Diagnosis, result: PreflightResult): Diagnosis {
  const nixSaid = diagnosis.message.split('\n')[0] ?? ''
  if (result.healthy) {
    return {
      ...diagnosis,
      message:
        `${diagnosis.message}\nChecked again after the build, the builder answers the action's own SSH client ` +
        "(host key pinned, key accepted, Nix found): the fault passed, or it is in what only the nix-daemon's ssh " +
        "uses (root's ssh config and known_hosts on the runner); its log has ssh's error."
    }
  }
  return {
    ...diagnosis,
    title: `${result.builder} ${result.cause ?? 'unhealthy'} (checked again after the build)`,
    message: [
      result.message ?? nixSaid,
      'Found by checking the builder again after Nix failed to connect to it during the build; it passed the ' +
        'preflight at the start of the step, so this changed since.',
      `Nix's own report: ${nixSaid}`
    ].join('\n')
  }
}

/** The check's own failures are not the build's: without a verdict, the diagnosis stays as Nix's log has it. */
async function checkSafely(
  builder: ConfiguredBuilder,
  check: CheckBuilder
): Promise<PreflightResult | undefined> {
  try {
    return await check(builder)
  } catch {
    return undefined
  }
}
