import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { factsCommands, parseFacts } from '../../../src/builders/builder-facts.js'
import { CONFIG_SHOW_SHELL } from '../../../src/nix/nix-cli.js'

/** The lab builders' answers to factsCommands('ssh-ng'), joined (c on Nix 2.8.0, c-2.34 on 2.34.8), config cut to four settings. */
function answer(versionLine: string, free: string, config: object, store = '0 Trusted: 1'): string {
  return [
    '@@nix-offload found yes',
    `@@nix-offload version ${versionLine}`,
    '@@nix-offload user nixbuilder',
    '@@nix-offload groups nixbuilder',
    '@@nix-offload cores 2',
    `@@nix-offload free ${free}`,
    '@@nix-offload config',
    JSON.stringify(config),
    '',
    `@@nix-offload store ${store}`
  ].join('\n')
}

const CONFIG = {
  system: { defaultValue: 'x86_64-linux', value: 'x86_64-linux' },
  'extra-platforms': { value: ['i686-linux', 'x86_64-v1-linux'] },
  'system-features': {
    defaultValue: ['benchmark', 'big-parallel', 'nixos-test'],
    value: ['benchmark', 'lab-c']
  },
  'trusted-users': { defaultValue: ['root'], value: ['root', 'nixbuilder', 'nixnopath'] }
}

describe('factsCommands', () => {
  it('asks for the config the way each Nix spells it, `config show` first', () => {
    const [about] = factsCommands('ssh-ng')
    expect(about).toContain(CONFIG_SHOW_SHELL)
    expect(about).not.toContain('show-config --json 2>/dev/null ||')
  })

  it('asks the store last, in a command of its own, so that a hung daemon leaves the other answers whole', () => {
    const [about, store] = factsCommands('ssh-ng')
    expect(store).toContain('store ping')
    expect(about).not.toContain('store ping')
  })
})

describe('parseFacts', () => {
  it("drops a reported system or feature that the inputs would refuse: it would change the machines file's lines", () => {
    const facts = parseFacts(
      'ssh-ng',
      answer('nix-daemon (Nix) 2.34.8', '1', {
        ...CONFIG,
        system: { value: 'x86_64-linux\nssh://evil x86_64-linux' },
        'extra-platforms': { value: ['i686-linux', 'aarch64-linux # x'] },
        'system-features': { value: ['kvm', 'big;parallel', 'a\nb'] }
      })
    )
    expect(facts.system).toBeUndefined()
    expect(facts.extraPlatforms).toEqual(['i686-linux'])
    expect(facts.systemFeatures).toEqual(['kvm'])
  })

  it('reads a Nix 2.34 builder (answered by `nix config show`)', () => {
    const facts = parseFacts(
      'ssh-ng',
      answer('nix-daemon (Nix) 2.34.8', '81895484', {
        ...CONFIG,
        system: { ...CONFIG.system, experimentalFeature: null }
      })
    )
    expect(facts).toEqual({
      access: 'shell',
      unasked: [],
      program: 'nix-daemon',
      programFound: true,
      nixVersion: '2.34.8',
      user: 'nixbuilder',
      groups: ['nixbuilder'],
      cores: 2,
      storeFreeBytes: 81895484 * 1024,
      system: 'x86_64-linux',
      extraPlatforms: ['i686-linux', 'x86_64-v1-linux'],
      systemFeatures: ['benchmark', 'lab-c'],
      trustedUsers: ['root', 'nixbuilder', 'nixnopath'],
      storeAnswers: true
    })
  })

  it('reads a Nix 2.8 builder (answered by `nix show-config`), where df printed nothing', () => {
    const facts = parseFacts('ssh-ng', answer('nix-daemon (Nix) 2.8.0', '', CONFIG))
    expect(facts.nixVersion).toBe('2.8.0')
    expect(facts.storeFreeBytes).toBeUndefined()
    expect(facts.trustedUsers).toEqual(['root', 'nixbuilder', 'nixnopath'])
  })

  it("takes Determinate Nix's Nix version", () => {
    const facts = parseFacts('ssh-ng', answer('nix-daemon (Determinate Nix 3.19.0) 2.34.6', '1', CONFIG))
    expect(facts.nixVersion).toBe('2.34.6')
  })

  it("reads whether the builder user's store answered `nix store ping`, last", () => {
    const said = (store: string): unknown => {
      const facts = parseFacts('ssh-ng', answer('nix-daemon (Nix) 2.8.0', '1', CONFIG, store))
      // The config before the store line still reads whole.
      expect(facts.trustedUsers).toEqual(['root', 'nixbuilder', 'nixnopath'])
      return { answers: facts.storeAnswers, error: facts.storeError }
    }
    expect(said('0 Version: 2.8.0')).toEqual({ answers: true, error: undefined })
    expect(
      said("1 error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused")
    ).toEqual({
      answers: false,
      error: "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused"
    })
    expect(said('1 ')).toEqual({ answers: false, error: 'exit code 1' })
    // No `nix` on the builder user's PATH: nothing known about its store.
    expect(said('127 sh: 1: nix: not found')).toEqual({ answers: undefined, error: undefined })
    // No store line at all (an older answer, or one cut short): nothing known either.
    const cut = answer('nix-daemon (Nix) 2.8.0', '1', CONFIG).split('\n@@nix-offload store')[0] ?? ''
    expect(parseFacts('ssh-ng', cut).storeAnswers).toBeUndefined()
    expect(parseFacts('ssh-ng', cut).trustedUsers).toEqual(['root', 'nixbuilder', 'nixnopath'])
  })

  it('leaves the config facts empty when neither config command answered', () => {
    const facts = parseFacts('ssh', answer('', '1', {}).replace('{}', ''))
    expect(facts).toMatchObject({
      program: 'nix-store',
      nixVersion: '',
      systemFeatures: [],
      extraPlatforms: []
    })
    expect(facts.trustedUsers).toBeUndefined()
  })
})

describe('factsCommands with remote-program', () => {
  /**
   * A builder's shell whose PATH has the usual tools but no Nix, or with `bare` no directory at all (the lab's
   * no-Nix user); Nix's programs are fakes in `bin`, if any.
   */
  function builderShell(
    programs: Record<string, string>,
    bare = false
  ): { bin: string; run: (command: string) => string } {
    const root = mkdtempSync(join(tmpdir(), 'remote-program-'))
    const tools = join(root, 'tools')
    const bin = join(root, 'nix', 'bin')
    mkdirSync(tools)
    mkdirSync(bin, { recursive: true })
    for (const tool of bare ? [] : ['id', 'getconf', 'nproc', 'df', 'tail', 'head', 'awk', 'cat']) {
      const found = ['/usr/bin', '/bin'].map(dir => join(dir, tool)).find(path => existsSync(path))
      if (found !== undefined) symlinkSync(found, join(tools, tool))
    }
    for (const [name, script] of Object.entries(programs)) {
      writeFileSync(join(bin, name), `#!/bin/sh\n${script}\n`)
      chmodSync(join(bin, name), 0o755)
    }
    const run = (command: string): string =>
      execFileSync('/bin/sh', ['-c', command], {
        env: { PATH: bare ? join(root, 'nonexistent') : tools },
        encoding: 'utf8'
      })
    return { bin, run }
  }

  const FAKE_NIX = [
    'case "$*" in',
    '  *"store ping"*) exit 0 ;;',
    `  *"config show"*) echo '${JSON.stringify(CONFIG)}' ;;`,
    '  *) exit 1 ;;',
    'esac'
  ].join('\n')

  it("checks that program and asks the `nix` beside it, where the builder user's PATH has no Nix", () => {
    const { bin, run } = builderShell({ 'nix-daemon': 'echo "nix-daemon (Nix) 2.8.0"', nix: FAKE_NIX })
    const program = join(bin, 'nix-daemon')
    const facts = parseFacts('ssh-ng', factsCommands('ssh-ng', program).map(run).join(''), program)
    expect(facts).toMatchObject({
      program,
      programFound: true,
      nixVersion: '2.8.0',
      system: 'x86_64-linux',
      trustedUsers: ['root', 'nixbuilder', 'nixnopath'],
      storeAnswers: true
    })
    // Without the input, the same shell finds nothing.
    const bare = parseFacts('ssh-ng', factsCommands('ssh-ng').map(run).join(''))
    expect(bare).toMatchObject({ program: 'nix-daemon', programFound: false })
    expect(bare.storeAnswers).toBeUndefined()
  })

  it('says not found for a path that is missing or not executable, and leaves the store unknown without a `nix`', () => {
    const { bin, run } = builderShell({ 'nix-store': 'echo "nix-store (Nix) 2.8.0"' })
    chmodSync(join(bin, 'nix-store'), 0o644)
    const store = join(bin, 'nix-store')
    const notExecutable = parseFacts('ssh', factsCommands('ssh', store).map(run).join(''), store)
    expect(notExecutable).toMatchObject({ program: store, programFound: false })
    expect(notExecutable.storeAnswers).toBeUndefined()
    const missing = join(bin, 'nix-daemon')
    expect(
      parseFacts('ssh-ng', factsCommands('ssh-ng', missing).map(run).join(''), missing).programFound
    ).toBe(false)
  })

  it('answers from a PATH that names no directory at all, as sshd leaves it with `SetEnv PATH=/nonexistent`', () => {
    const { bin, run } = builderShell({ 'nix-daemon': 'echo "nix-daemon (Nix) 2.8.0"', nix: FAKE_NIX }, true)
    const program = join(bin, 'nix-daemon')
    const facts = parseFacts('ssh-ng', factsCommands('ssh-ng', program).map(run).join(''), program)
    expect(facts).toMatchObject({ programFound: true, nixVersion: '2.8.0', storeAnswers: true })
    expect(facts.trustedUsers).toEqual(['root', 'nixbuilder', 'nixnopath'])
    expect(parseFacts('ssh-ng', factsCommands('ssh-ng').map(run).join('')).programFound).toBe(false)
  })
})
