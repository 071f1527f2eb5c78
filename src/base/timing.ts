import { logDebug } from './step-log.js'

/**
 * Awaits one phase of the step and logs how long it took, and when it ended since Node started, as a debug line
 * (shown with ACTIONS_STEP_DEBUG): where a slow step spends its time.
 */
export async function phase<T>(name: string, work: Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await work
  } finally {
    const now = performance.now()
    logDebug(`${name}: ${Math.round(now - started)} ms (ended ${Math.round(now)} ms after Node started)`)
  }
}
