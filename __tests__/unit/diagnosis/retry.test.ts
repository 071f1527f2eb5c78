import { describe, expect, it } from 'vitest'
import type { Cause, Diagnosis } from '../../../src/diagnosis/diagnosis.js'
import { diagnose } from '../../../src/diagnosis/diagnosis.js'
import { retryDecision, TRANSIENT } from '../../../src/diagnosis/retry.js'
import { offerWith } from '../support/builders.js'

const URI = 'ssh-ng://nixbuilder@nix-offload-a1b2c3-1'
const DRV = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-slow.drv'

function errorOf(cause: Cause, machine = URI): Diagnosis {
  return { cause, severity: 'error', title: cause, message: cause, machine }
}

/** Nix's messages, diagnosed against one builder. */
function diagnosed(messages: string[]): Diagnosis[] {
  return diagnose(messages, { builders: [offerWith()], lastLogLines: () => [], runnerUser: 'runner' })
}

describe('which causes are transient', () => {
  it('has a flag for every cause: lost connections and unreachable builders only', () => {
    const transient = Object.entries(TRANSIENT)
      .filter(([, flag]) => flag)
      .map(([cause]) => cause)
    expect(transient.sort()).toEqual(['builder-unreachable', 'connection-dropped'])
    expect(Object.keys(TRANSIENT)).toHaveLength(11)
  })
})

describe('retryDecision', () => {
  it('retries a transient failure while attempts remain, naming the lost builder', () => {
    const diagnoses = [errorOf('connection-dropped')]
    expect(retryDecision({ diagnoses, attempts: 1, retries: 1 })).toEqual({ retry: true, lost: [URI] })
    expect(retryDecision({ diagnoses, attempts: 2, retries: 1 })).toEqual({
      retry: false,
      why: 'no-retries-left'
    })
    expect(retryDecision({ diagnoses, attempts: 3, retries: 3 })).toMatchObject({ retry: true })
  })

  it('never retries with retries 0', () => {
    const decision = retryDecision({ diagnoses: [errorOf('builder-unreachable')], attempts: 1, retries: 0 })
    expect(decision).toEqual({ retry: false, why: 'no-retries-left' })
  })

  it('never retries a failed builder script, even beside a lost connection', () => {
    const diagnoses = [errorOf('build-failed-on-builder'), errorOf('connection-dropped', 'ssh-ng://other')]
    expect(retryDecision({ diagnoses, attempts: 1, retries: 5 })).toEqual({
      retry: false,
      why: 'not-transient'
    })
  })

  it('does not retry a failure no rule explains, nor warnings alone', () => {
    const warning: Diagnosis = { ...errorOf('builder-unreachable'), severity: 'warning' }
    expect(retryDecision({ diagnoses: [warning], attempts: 1, retries: 1 })).toEqual({
      retry: false,
      why: 'no-error'
    })
    expect(retryDecision({ diagnoses: [], attempts: 1, retries: 1 })).toEqual({
      retry: false,
      why: 'no-error'
    })
  })

  it("classifies Nix's own wordings: a dropped connection is retried, a builder script's exit is not", () => {
    const dropped = diagnosed([`error: build of '${DRV}' on '${URI}' failed: error: unexpected end-of-file`])
    expect(retryDecision({ diagnoses: dropped, attempts: 1, retries: 1 })).toEqual({
      retry: true,
      lost: [URI]
    })
    const failed = diagnosed([
      `error: build of '${DRV}' on '${URI}' failed: builder for '${DRV}' failed with exit code 1`
    ])
    expect(retryDecision({ diagnoses: failed, attempts: 1, retries: 1 })).toMatchObject({ retry: false })
    const unstarted = diagnosed([`error: failed to start SSH connection to 'nix-offload-a1b2c3-1'`])
    expect(retryDecision({ diagnoses: unstarted, attempts: 1, retries: 1 })).toMatchObject({ retry: true })
  })
})
