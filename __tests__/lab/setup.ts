/**
 * Set-up and checks the lab tests share: what a step must leave as it found it (the runner's watched files, its SSH
 * masters), the builders a test may stop, started again after each test, and the inputs of a fresh derivation's build.
 */
import { expect } from 'vitest'
import { builderCtl, builderInputs, type Lab, newMasters, snapshot, sshMasters, watched } from './harness.js'

/** Takes the runner's watched files now; the check it returns expects them to be so again. */
export function watchFiles(lab: Lab): () => void {
  const before = snapshot(watched(lab))
  return () => expect(snapshot(watched(lab))).toEqual(before)
}

/** Takes the SSH masters running now; the check it returns expects no other to be running. */
export async function watchMasters(lab: Lab): Promise<() => Promise<void>> {
  const before = await sshMasters(lab)
  return async () => expect(newMasters(before, await sshMasters(lab))).toBe('')
}

/** Starts the named builders, one after the other: for an afterEach, after tests that stop one. */
export async function startBuilders(lab: Lab, names: readonly string[] = ['a', 'b']): Promise<void> {
  for (const name of names) await builderCtl(lab, 'start', name)
}

/** The inputs that build a fresh derivation (freshDerivation's `drv` attribute) on lab builder `name`. */
export function derivationInputs(lab: Lab, drv: { args: string }, name = 'a'): Record<string, string> {
  return { ...builderInputs(lab, name), args: drv.args, installables: 'drv' }
}
