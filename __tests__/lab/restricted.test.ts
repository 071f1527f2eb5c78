import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderInputs,
  freshDerivation,
  inStore,
  type Lab,
  loadLab,
  type StepResult,
  visibleLog,
  firstError,
  mainThenPost
} from './harness.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')

/** A builder whose key may only run Nix, as users have them, and the inputs that reach it. */
interface Restriction {
  name: string
  inputs: Record<string, string>
}

const RESTRICTIONS: Restriction[] = [
  {
    name: 'a key authorised with command="nix-daemon --stdio",restrict',
    inputs: { 'ssh-private-key': readFileSync(lab.daemonOnlyKey, 'utf8') }
  },
  {
    name: 'an account sshd forces to nix-daemon --stdio (NixOS nix.sshServe, protocol ssh-ng)',
    inputs: { user: lab.daemonOnlyUser }
  }
]

/** A fresh derivation built through `inputs` with `strategy`: it must build there, confirmed. */
async function buildThere(inputs: Record<string, string>, strategy: string): Promise<StepResult> {
  const drv = freshDerivation(lab)
  const main = await mainThenPost(lab, {
    ...builderInputs(lab, 'a'),
    ...inputs,
    strategy,
    args: drv.args,
    installables: 'drv'
  })
  expect(main.code, visibleLog(main)).toBe(0)
  expect(main.outputs.confirmed).toBe('true')
  return main
}

describe.each(RESTRICTIONS)('a builder reached through $name', ({ inputs }) => {
  it.each(['hook', 'remote-store', 'auto'])(
    'builds a fresh derivation there with strategy %s, confirmed, and says what the preflight could not ask',
    async strategy => {
      const main = await buildThere(inputs, strategy)
      expect(inStore(a.storeDir, main.outputs['out-paths'] ?? '')).toBe(true)
      expect(visibleLog(main)).toMatch(/runs only nix-daemon --stdio/)
      expect(main.summary).toMatch(/runs only nix-daemon --stdio/)
    }
  )

  it('refuses auto systems with an error naming the input to set, before writing anything', async () => {
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      ...inputs,
      systems: 'auto',
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/'systems'/)
    expect(firstError(main)).toMatch(/nix-daemon --stdio/)
  })
})

describe('an account sshd forces to nix-store --serve --write (NixOS nix.sshServe, its default protocol ssh)', () => {
  const inputs = { user: lab.serveOnlyUser, protocol: 'ssh' }

  it.each(['hook', 'auto'])(
    'builds a fresh derivation there with strategy %s (the hook), confirmed',
    async strategy => {
      const main = await buildThere(inputs, strategy)
      expect(visibleLog(main)).toMatch(/runs only nix-store --serve/)
    }
  )

  it('refuses strategy remote-store before any change, saying it needs ssh-ng', async () => {
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      ...inputs,
      strategy: 'remote-store',
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/ssh-ng/)
    expect(firstError(main)).toMatch(/nix-store --serve/)
    expect(main.state.journal ?? '{"undo":[]}').toMatch(/"undo":\[\]/)
  })

  it('with protocol ssh-ng, fails at once naming the restriction and the protocol that would work', async () => {
    const main = await mainThenPost(lab, {
      ...builderInputs(lab, 'a'),
      user: lab.serveOnlyUser,
      installables: 'drv'
    })
    expect(main.code).toBe(1)
    expect(firstError(main)).toMatch(/nix-store --serve/)
    expect(firstError(main)).toMatch(/protocol: ssh/)
    expect(firstError(main)).not.toMatch(/no SSH handshake/)
  })
})
