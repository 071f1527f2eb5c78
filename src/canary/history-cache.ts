import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type CanarySample, parseHistory } from './trend.js'
import { logInfo, logWarning } from '../base/index.js'

const HISTORY_FILE = 'history.json'

/**
 * @actions/cache (with the Azure storage client under it) is most of the bundle and of main's load time
 * (bench/README.md, "Figures behind choices in the code"), so only the canary's trend pays for it, on first use.
 */
async function cacheModule(): Promise<typeof import('@actions/cache')> {
  return import('@actions/cache')
}

/**
 * Cache entries are immutable, so each run saves under a key of its own and the next run restores the newest entry
 * by this prefix.
 */
export function historyKeyPrefix(id: string): string {
  return `nix-offload-canary-${id}-`
}

/**
 * The canary history saved by the newest earlier run, restored into `directory`; empty (with a warning) when there
 * is none or the cache service cannot be reached. Never throws.
 *
 * `directory` must be the SAME absolute path on every run (e.g. `$RUNNER_TEMP/nix-offload-canary-history`), not
 * a `mkdtemp` name: @actions/cache hashes the cached path into the entry's version, and a restore only sees
 * entries of its own version, so a new path per run never finds the earlier runs.
 */
export async function restoreHistory(
  id: string,
  directory: string
): Promise<{ samples: CanarySample[]; key?: string }> {
  const cache = await cacheModule()
  if (!cache.isFeatureAvailable()) {
    logWarning(
      'trend-factor: the GitHub Actions cache service is not available to this job (ACTIONS_RESULTS_URL is not ' +
        'set), so the canary cannot compare this run with earlier ones; run it on a GitHub-hosted or ' +
        'self-hosted runner of github.com to follow trends.'
    )
    return { samples: [] }
  }
  const prefix = historyKeyPrefix(id)
  try {
    // The primary key is the prefix too: there is no exact key to hope for, only the newest earlier run.
    const key = await cache.restoreCache([historyPath(directory)], prefix, [prefix])
    if (key === undefined) {
      logInfo(`Canary history: none saved yet under ${prefix}*; trends start with this run.`)
      return { samples: [] }
    }
    const samples = parseHistory(await readFile(historyPath(directory), 'utf8'))
    logInfo(`Canary history: ${samples.length} sample(s) restored from ${key}.`)
    return { samples, key }
  } catch (error) {
    logWarning(
      `trend-factor: could not restore the canary history (${describe(error)}); trends start afresh.`
    )
    return { samples: [] }
  }
}

/**
 * Saves `samples` under `nix-offload-canary-<id>-<runId>` and returns that key, or '' when nothing was saved (the
 * cause is logged as a warning). Never throws. `directory` must be the one `restoreHistory` used.
 */
export async function saveHistory(
  id: string,
  directory: string,
  samples: CanarySample[],
  runId: string
): Promise<string> {
  const cache = await cacheModule()
  if (!cache.isFeatureAvailable()) {
    logInfo('Canary history not saved: the GitHub Actions cache service is not available to this job.')
    return ''
  }
  const key = `${historyKeyPrefix(id)}${runId}`
  try {
    await mkdir(directory, { recursive: true })
    await writeFile(historyPath(directory), `${JSON.stringify(samples)}\n`)
    // saveCache reports its own failures (reservation refused, upload failed) and returns -1.
    const cacheId = await cache.saveCache([historyPath(directory)], key)
    if (cacheId === -1) {
      logWarning(
        `trend-factor: the canary history was not saved under ${key} (see the cache messages above).`
      )
      return ''
    }
    logInfo(`Canary history: ${samples.length} sample(s) saved under ${key}.`)
    return key
  } catch (error) {
    logWarning(`trend-factor: could not save the canary history under ${key} (${describe(error)}).`)
    return ''
  }
}

function historyPath(directory: string): string {
  return join(directory, HISTORY_FILE)
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
