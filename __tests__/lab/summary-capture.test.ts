import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  derivationFile,
  freshDerivation,
  type Lab,
  loadLab,
  runMain,
  runPost,
  visibleLog
} from './harness.js'

/**
 * A real job summary and a real failure annotation, as the README shows them (scripts/screenshots.sh renders them to
 * pictures). With SUMMARY_CAPTURE_DIR set, each is also written there.
 */

const lab: Lab = loadLab()
const b = builder(lab, 'b')
const captureDir = process.env.SUMMARY_CAPTURE_DIR

function keep(name: string, text: string): void {
  if (captureDir === undefined || captureDir === '') return
  mkdirSync(captureDir, { recursive: true })
  writeFileSync(join(captureDir, name), text)
}

describe('what the step shows', () => {
  it('a summary of a build offloaded to two builders, with the proof', async () => {
    // Six fresh derivations in one file, named like packages, one second each: both builders take some.
    const names = ['libfoo', 'libbar', 'toolchain', 'kernel-patched', 'app', 'app-tests']
    const file = derivationFile(
      lab,
      names
        .map(
          name =>
            `  "${name}" = builtins.derivation { name = "${name}-\${builtins.substring 0 6 nonce}"; inherit system; ` +
            `builder = "/bin/sh"; args = [ "-c" "echo building ${name}; /bin/sleep 1; echo \${nonce} > $out" ]; };`
        )
        .join('\n')
    )
    const main = await runMain(lab, {
      ...builderInputs(lab, 'a'),
      'max-jobs': '2',
      builders: `ssh-ng://${b.user}@${b.host}:${b.port} ${lab.localSystem} - 2 1 - -`,
      'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
      args: file.args,
      installables: names.join('\n')
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(main.summary).toContain('Confirmed')
    keep('summary.md', main.summary)
    await runPost(lab, main)
  })

  it('the annotation of a failure: a builder whose host key is not the pinned one', async () => {
    const inputs = {
      ...builderInputs(lab, 'a'),
      'host-public-key': builder(lab, 'b').hostPublicKey,
      installables: 'drv'
    }
    const drv = freshDerivation(lab)
    const main = await runMain(lab, { ...inputs, args: drv.args })
    expect(main.code).toBe(1)
    const errors = visibleLog(main)
      .split('\n')
      .filter(line => line.startsWith('::error'))
    expect(errors.length).toBeGreaterThan(0)
    keep('annotation.txt', errors.join('\n') + '\n')
    keep('failure-summary.md', main.summary)
  })
})
