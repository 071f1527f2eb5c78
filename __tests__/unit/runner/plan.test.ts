import { describe, expect, it } from 'vitest'
import { SetupError } from '../../../src/inputs/errors.js'
import {
  type Plan,
  type Step,
  makePlan,
  makeStorePlan as makeConfiguredStorePlan,
  nixEnvironment
} from '../../../src/runner/plan.js'
import { controlPathIn } from '../../../src/runner/ssh-masters.js'
import type { RunnerFacts } from '../../../src/runner/probe.js'
import { Input } from '../../../src/inputs/constants.js'
import type { Builder, Settings } from '../../../src/inputs/settings.js'
import { configureBuilders } from '../../../src/inputs/index.js'
import { runnerFactsWith } from '../support/runner.js'
import { settingsWith } from '../support/settings.js'

const TOKEN = 'a1b2c3'
const KEY_TEXT = '-----BEGIN OPENSSH PRIVATE KEY-----\nnot-parsed-here\n-----END OPENSSH PRIVATE KEY-----\n'
const HOST_KEY = {
  type: 'ssh-ed25519',
  blob: 'AAAAC3NzaC1lZDI1NTE5AAAAIK9FOpMsDI5XMSC1L3hqFU0cUvMIhEbq6uCOU+4YkSag'
}

const BUILDER: Builder = {
  protocol: 'ssh-ng',
  host: 'builder.example.com',
  port: 2222,
  user: 'nixbuilder',
  systems: ['x86_64-linux'],
  maxJobs: 2,
  speedFactor: 1,
  supportedFeatures: ['kvm'],
  mandatoryFeatures: [],
  origin: "input 'host'",
  pinInput: Input.HostPublicKey
}

function settings(overrides: Partial<Settings> = {}): Settings {
  return settingsWith({
    builders: [BUILDER],
    privateKey: { text: KEY_TEXT, type: 'ssh-ed25519', publicLine: `ssh-ed25519 ${HOST_KEY.blob}` },
    knownHosts: [{ hosts: '[builder.example.com]:2222', key: HOST_KEY }],
    ...overrides
  })
}

const TRUSTED_DAEMON: RunnerFacts = runnerFactsWith({ nixVersion: '2.8.0' })

/** The plan for settings whose builders are all concrete, as the preflight hands them on. */
function planOf(chosen: Settings, runner: RunnerFacts, token: string): Plan {
  const builders = chosen.builders.map(builder => ({ ...BUILDER, ...builder }) as Builder)
  return makePlan(chosen, configureBuilders(builders, token), runner, token)
}

/** The remote-store plan for these builders, configured for the run `token`. */
function makeStorePlan(chosen: Settings, builders: Builder[], token: string, tempDir: string): Plan {
  return makeConfiguredStorePlan(chosen, configureBuilders(builders, token), token, tempDir)
}

function facts(overrides: Partial<RunnerFacts>): RunnerFacts {
  return { ...TRUSTED_DAEMON, ...overrides }
}

const WORK_DIR = `/root/.ssh/nix-offload-${TOKEN}`
const MACHINE_LINE = `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1 x86_64-linux - 2 1 kvm - -\n`
const BEGIN = `# nix-offload ${TOKEN}: begin (added by the nix-offload action, whose post step removes it)`
const END = `# nix-offload ${TOKEN}: end`

function step<K extends Step['kind']>(plan: Plan, kind: K, path?: string): Extract<Step, { kind: K }> {
  const found = plan.steps.find(
    (s): s is Extract<Step, { kind: K }> =>
      s.kind === kind && (path === undefined || ('path' in s && s.path === path))
  )
  if (found === undefined) throw new Error(`no ${kind} step${path === undefined ? '' : ` for ${path}`}`)
  return found
}

function paths(plan: Plan): string[] {
  return plan.steps.flatMap(s => ('path' in s ? [s.path] : []))
}

describe('makePlan, common to every path', () => {
  const plan = planOf(settings(), TRUSTED_DAEMON, TOKEN)

  it('works in a token-named directory under the ssh home, created and owned by the action', () => {
    expect(plan.workDir).toBe(WORK_DIR)
    // The ssh config block first: it makes ~/.ssh (0700) when missing, and the post step's last job removes it.
    expect(plan.steps.slice(0, 2).map(s => [s.kind, 'path' in s ? s.path : ''])).toEqual([
      ['block', '/root/.ssh/config'],
      ['mkdir', WORK_DIR]
    ])
  })

  it("names its directory by a 128-bit token's first 6 hex digits, so that its control sockets fit a socket path", () => {
    const token = '0123456789abcdef'.repeat(2)
    // What ssh binds while it starts a master: the ControlPath with `%C` (40 hex) and a random 16-character suffix.
    const socket = (dir: string): string =>
      `${controlPathIn(dir).replace('%C', '0'.repeat(40))}.${'0'.repeat(16)}`
    const hook = planOf(settings(), facts({ sshHome: '/var/root' }), token)
    expect(hook.workDir).toBe('/var/root/.ssh/nix-offload-012345')
    expect(socket(hook.workDir).length).toBeLessThan(104)
    expect(step(hook, 'block', '/var/root/.ssh/config').content).toContain(`# nix-offload ${token}: begin`)
    const store = makeStorePlan(settings(), [BUILDER], token, '/home/runner/work/_temp')
    expect(store.workDir).toBe('/home/runner/work/_temp/nix-offload-012345')
    expect(socket(store.workDir).length).toBeLessThan(104)
  })

  it('writes the key only its owner can read', () => {
    expect(step(plan, 'write', `${WORK_DIR}/key`)).toEqual({
      kind: 'write',
      path: `${WORK_DIR}/key`,
      mode: 0o600,
      content: KEY_TEXT
    })
  })

  it('writes the pinned known_hosts file', () => {
    expect(step(plan, 'write', `${WORK_DIR}/known_hosts`)).toEqual({
      kind: 'write',
      path: `${WORK_DIR}/known_hosts`,
      mode: 0o644,
      content: `[builder.example.com]:2222 ssh-ed25519 ${HOST_KEY.blob}\n`
    })
  })

  it('puts a Host alias block at the top of ~/.ssh/config that pins the key and host key, ending with Host *', () => {
    const config = step(plan, 'block', '/root/.ssh/config')
    expect(config.mode).toBe(0o600)
    expect(config.at).toBe('top')
    expect(config.restart).toBeUndefined()
    const lines = config.content.split('\n')
    expect(lines).toContain(`Host nix-offload-${TOKEN}-1`)
    expect(lines).toContain('  HostName builder.example.com')
    expect(lines).toContain('  Port 2222')
    expect(lines).toContain(`  IdentityFile "${WORK_DIR}/key"`)
    expect(lines).toContain(`  UserKnownHostsFile "${WORK_DIR}/known_hosts"`)
    expect(lines).toContain('  StrictHostKeyChecking yes')
    expect(lines).toContain('  BatchMode yes')
    expect(lines).toContain('  IdentitiesOnly yes')
    expect(lines.filter(line => !line.startsWith('#') && line !== '').at(-1)).toBe('Host *')
  })

  it('names each builder by a numbered alias in its store URI', () => {
    const two = planOf(
      settings({
        builders: [BUILDER, { ...BUILDER, protocol: 'ssh', user: 'root', origin: "input 'builders' line 1" }]
      }),
      TRUSTED_DAEMON,
      TOKEN
    )
    expect(two.builders.map(b => [b.alias, b.storeUri])).toEqual([
      [`nix-offload-${TOKEN}-1`, `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1`],
      [`nix-offload-${TOKEN}-2`, `ssh://root@nix-offload-${TOKEN}-2`]
    ])
    expect(two.builders[1]).toMatchObject({
      host: 'builder.example.com',
      port: 2222,
      origin: "input 'builders' line 1"
    })
  })

  it("carries remote-program in each builder's store URI, the machines file's first column, and the ssh alias without it", () => {
    const mac = { ...BUILDER, remoteProgram: '/nix/var/nix/profiles/default/bin/nix-daemon' }
    const linux = {
      ...BUILDER,
      protocol: 'ssh' as const,
      remoteProgram: '/nix/var/nix/profiles/default/bin/nix-store'
    }
    const hook = planOf(settings({ builders: [mac, linux] }), TRUSTED_DAEMON, TOKEN)
    expect(hook.builders.map(b => b.storeUri)).toEqual([
      `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon`,
      `ssh://nixbuilder@nix-offload-${TOKEN}-2?remote-program=/nix/var/nix/profiles/default/bin/nix-store`
    ])
    expect(step(hook, 'write', `${WORK_DIR}/machines`).content.split('\n')[0]).toBe(
      `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon ` +
        'x86_64-linux - 2 1 kvm - -'
    )
    expect(step(hook, 'block', '/root/.ssh/config').content).toContain(`Host nix-offload-${TOKEN}-1\n`)
    const store = makeStorePlan(settings({ builders: [mac] }), [mac], TOKEN, '/home/runner/work/_temp')
    expect(store.builders[0]?.storeUri).toBe(
      `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1?remote-program=/nix/var/nix/profiles/default/bin/nix-daemon`
    )
  })

  it('copes with a trailing slash on the ssh home', () => {
    expect(planOf(settings(), facts({ sshHome: '/var/root/' }), TOKEN).workDir).toBe(
      `/var/root/.ssh/nix-offload-${TOKEN}`
    )
  })
})

describe('makePlan for a daemon that trusts the runner user', () => {
  const plan = planOf(settings(), TRUSTED_DAEMON, TOKEN)

  it('passes the builders through NIX_CONFIG and touches nothing under /etc/nix', () => {
    expect(plan.path).toBe('trusted-client')
    expect(plan.asRoot).toBe(true)
    expect(plan.nixConfig).toBe(`builders = @${WORK_DIR}/machines\nbuilders-use-substitutes = true`)
    expect(paths(plan).filter(p => p.startsWith('/etc/'))).toEqual([])
    expect(plan.steps.some(s => s.kind === 'block' && s.restart !== undefined)).toBe(false)
    expect(plan.machinesShared).toBe(false)
    expect(plan.warnings).toEqual([])
  })

  it('writes the machines file in the work directory', () => {
    expect(step(plan, 'write', `${WORK_DIR}/machines`)).toEqual({
      kind: 'write',
      path: `${WORK_DIR}/machines`,
      mode: 0o644,
      content: MACHINE_LINE
    })
  })

  it('leaves builders-use-substitutes out of NIX_CONFIG when it is false', () => {
    const off = planOf(settings({ buildersUseSubstitutes: false }), TRUSTED_DAEMON, TOKEN)
    expect(off.nixConfig).toBe(`builders = @${WORK_DIR}/machines`)
  })
})

describe('makePlan for an untrusted runner user whose daemon reads a machines file', () => {
  const untrusted = facts({ trusted: false, daemonBuilders: '@/etc/nix/machines', serviceManager: 'none' })

  it("adds its own block to the daemon's machines file, needs no restart and sets no NIX_CONFIG", () => {
    const plan = planOf(settings(), untrusted, TOKEN)
    expect(plan.path).toBe('machines-file')
    expect(plan.asRoot).toBe(true)
    expect(plan.nixConfig).toBe('')
    expect(plan.machinesFile).toBe('/etc/nix/machines')
    expect(plan.machinesShared).toBe(true)
    expect(step(plan, 'block', '/etc/nix/machines')).toEqual({
      kind: 'block',
      path: '/etc/nix/machines',
      mode: 0o644,
      at: 'end',
      content: `${BEGIN}\n${MACHINE_LINE}${END}\n`
    })
    expect(paths(plan)).not.toContain('/etc/nix/nix.conf')
    expect(paths(plan)).not.toContain(`${WORK_DIR}/machines`)
  })

  it('warns that builders-use-substitutes cannot be applied without a restart', () => {
    const plan = planOf(settings(), untrusted, TOKEN)
    expect(plan.warnings).toHaveLength(1)
    expect(plan.warnings[0]).toMatch(
      /^'builders-use-substitutes' is not applied: the nix-daemon does not trust runner/
    )
    expect(plan.warnings[0]).toContain('"builders-use-substitutes = true" to /etc/nix/nix.conf')
  })

  it('does not warn when the daemon already uses substitutes, or none are wanted', () => {
    expect(planOf(settings(), { ...untrusted, daemonBuildersUseSubstitutes: true }, TOKEN).warnings).toEqual(
      []
    )
    expect(planOf(settings({ buildersUseSubstitutes: false }), untrusted, TOKEN).warnings).toEqual([])
  })

  it('needs no restart under systemd either when substitutes are not missing', () => {
    const plan = planOf(
      settings({ buildersUseSubstitutes: false }),
      { ...untrusted, serviceManager: 'systemd' },
      TOKEN
    )
    expect(plan.path).toBe('machines-file')
    expect(plan.steps.some(s => s.kind === 'block' && s.restart !== undefined)).toBe(false)
  })
})

describe('makePlan for an untrusted runner user whose daemon config must change', () => {
  it('appends builders-use-substitutes to nix.conf and restarts the daemon when substitutes are wanted', () => {
    const plan = planOf(
      settings(),
      facts({ trusted: false, daemonBuilders: '@/etc/nix/machines', serviceManager: 'systemd' }),
      TOKEN
    )
    expect(plan.path).toBe('daemon-config')
    expect(plan.nixConfig).toBe('')
    expect(plan.steps.slice(-2)).toEqual([
      {
        kind: 'block',
        path: '/etc/nix/machines',
        mode: 0o644,
        at: 'end',
        content: `${BEGIN}\n${MACHINE_LINE}${END}\n`
      },
      {
        kind: 'block',
        path: '/etc/nix/nix.conf',
        mode: 0o644,
        at: 'end',
        content: `${BEGIN}\nbuilders-use-substitutes = true\n${END}\n`,
        restart: 'systemd'
      }
    ])
  })

  it('points the daemon at a machines file shared by the jobs when its builders are not a machines file', () => {
    const plan = planOf(
      settings(),
      facts({
        trusted: false,
        daemonBuilders: 'ssh://other x86_64-linux',
        serviceManager: 'launchd',
        sshHome: '/var/root'
      }),
      TOKEN
    )
    expect(plan.path).toBe('daemon-config')
    // One file for every job, so that all their builders count at once (a builders line per job would override).
    expect(plan.machinesFile).toBe('/etc/nix/nix-offload.machines')
    expect(plan.machinesShared).toBe(true)
    expect(step(plan, 'block', '/etc/nix/nix-offload.machines').content).toBe(
      `${BEGIN}\n${MACHINE_LINE}${END}\n`
    )
    expect(step(plan, 'block', '/etc/nix/nix.conf').content).toBe(
      `${BEGIN}\nbuilders = @/etc/nix/nix-offload.machines\nbuilders-use-substitutes = true\n${END}\n`
    )
    expect(plan.steps.at(-1)).toMatchObject({ kind: 'block', restart: 'launchd' })
  })

  it('refuses when nothing can be changed without a restart and no service manager runs', () => {
    const untrusted = facts({ trusted: false, daemonBuilders: '', serviceManager: 'none' })
    expect(() => planOf(settings(), untrusted, TOKEN)).toThrow(SetupError)
    let message = ''
    try {
      planOf(settings(), untrusted, TOKEN)
    } catch (error) {
      if (error instanceof Error) message = error.message
    }
    expect(message).toMatch(
      /^Cannot configure the builders: the nix-daemon does not trust the runner user runner/
    )
    expect(message).toContain('add "trusted-users = root runner" to /etc/nix/nix.conf')
    expect(message).toContain('restart the nix-daemon before this step')
  })
})

describe('makePlan for a single-user install', () => {
  const plan = planOf(
    settings(),
    facts({ store: 'local', trusted: true, serviceManager: 'none', sshHome: '/home/runner' }),
    TOKEN
  )

  it("offloads as the runner user from the user's own home, through NIX_CONFIG", () => {
    const workDir = `/home/runner/.ssh/nix-offload-${TOKEN}`
    expect(plan.path).toBe('single-user')
    expect(plan.asRoot).toBe(false)
    expect(plan.workDir).toBe(workDir)
    expect(plan.nixConfig).toBe(`builders = @${workDir}/machines\nbuilders-use-substitutes = true`)
    expect(step(plan, 'block', '/home/runner/.ssh/config').mode).toBe(0o600)
    expect(paths(plan).filter(p => !p.startsWith('/home/runner/.ssh'))).toEqual([])
  })
})

describe('makeStorePlan (remote-store)', () => {
  const TEMP = '/home/runner/work/_temp'
  const STORE_DIR = `${TEMP}/nix-offload-${TOKEN}`
  const SSH_CONFIG = `${STORE_DIR}/ssh_config`
  const second: Builder = { ...BUILDER, host: 'arm.example.com', port: 22, systems: ['aarch64-linux'] }
  const plan = makeStorePlan(settings({ builders: [BUILDER, second] }), [BUILDER, second], TOKEN, TEMP)

  it('keeps every file in its own directory under the temp directory given, and needs no root', () => {
    expect(plan.path).toBe('remote-store')
    expect(plan.asRoot).toBe(false)
    expect(plan.workDir).toBe(STORE_DIR)
    expect(plan.steps[0]).toEqual({ kind: 'mkdir', path: STORE_DIR })
    expect(paths(plan).length).toBeGreaterThan(0)
    expect(paths(plan).filter(p => !p.startsWith(`${STORE_DIR}/`) && p !== STORE_DIR)).toEqual([])
    expect(paths(plan).filter(p => p.startsWith('/root') || p.startsWith('/etc'))).toEqual([])
    expect(plan.steps.some(s => s.kind === 'block')).toBe(false)
    expect(plan.nixConfig).toBe('')
    expect(plan.machinesFile).toBe('')
    expect(plan.warnings).toEqual([])
  })

  it('copes with a trailing slash on the temp directory', () => {
    expect(makeStorePlan(settings(), [BUILDER], TOKEN, `${TEMP}/`).workDir).toBe(STORE_DIR)
  })

  it('writes the pinned known_hosts', () => {
    expect(step(plan, 'write', `${STORE_DIR}/known_hosts`).content).toBe(
      `[builder.example.com]:2222 ssh-ed25519 ${HOST_KEY.blob}\n`
    )
  })

  it('writes its own ssh config, names it in the plan, and gives each builder an alias with shared connections', () => {
    expect(plan.sshConfigFile).toBe(SSH_CONFIG)
    const config = step(plan, 'write', SSH_CONFIG)
    expect(config.mode).toBe(0o600)
    const lines = config.content.split('\n')
    expect(plan.builders.map(b => [b.alias, b.storeUri])).toEqual([
      [`nix-offload-${TOKEN}-1`, `ssh-ng://nixbuilder@nix-offload-${TOKEN}-1`],
      [`nix-offload-${TOKEN}-2`, `ssh-ng://nixbuilder@nix-offload-${TOKEN}-2`]
    ])
    for (const alias of [`nix-offload-${TOKEN}-1`, `nix-offload-${TOKEN}-2`])
      expect(lines).toContain(`Host ${alias}`)
    expect(lines).toContain('  HostName arm.example.com')
    expect(lines).toContain(`  IdentityFile "${STORE_DIR}/key.pub"`)
    expect(lines).toContain(`  UserKnownHostsFile "${STORE_DIR}/known_hosts"`)
    expect(lines.filter(line => line === '  ControlMaster auto')).toHaveLength(2)
    expect(lines.filter(line => line === `  ControlPath "${STORE_DIR}/cm-%C"`)).toHaveLength(2)
    // The master is the store check's own process, ended by main: no session may leave one behind.
    expect(lines.filter(line => line === '  ControlPersist no')).toHaveLength(2)
  })

  it('records the masters to close, with the ssh config they were opened through', () => {
    expect(step(plan, 'ssh-masters')).toEqual({
      kind: 'ssh-masters',
      aliases: [`nix-offload-${TOKEN}-1`, `nix-offload-${TOKEN}-2`],
      controlDir: STORE_DIR,
      configFile: SSH_CONFIG
    })
  })

  it('shares no connections, and has no masters to close, without multiplex', () => {
    const single = makeStorePlan(settings({ multiplex: false }), [BUILDER, second], TOKEN, TEMP)
    const content = step(single, 'write', SSH_CONFIG).content
    expect(content).toContain(`Host nix-offload-${TOKEN}-2`)
    expect(content).not.toMatch(/ControlMaster auto|ControlPersist/)
    expect(content).toContain('  ControlMaster no\n  ControlPath none')
    expect(single.steps.some(s => s.kind === 'ssh-masters')).toBe(false)
  })

  it('refuses a temp directory with whitespace, which NIX_SSHOPTS cannot carry', () => {
    for (const temp of ['/home/runner/actions runner/_temp', '/tmp/tab\there']) {
      expect(() => makeStorePlan(settings(), [BUILDER], TOKEN, temp)).toThrow(SetupError)
    }
    expect(() => makeStorePlan(settings(), [BUILDER], TOKEN, '/home/runner/actions runner/_temp')).toThrow(
      '"/home/runner/actions runner/_temp" has whitespace'
    )
  })
})

describe('nixEnvironment', () => {
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', HOME: '/home/runner' }

  it("points the runner's nix at the store plan's ssh config through NIX_SSHOPTS", () => {
    const plan = makeStorePlan(settings(), [BUILDER], TOKEN, '/tmp')
    expect(nixEnvironment(plan, env)).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/runner',
      NIX_SSHOPTS: `-F /tmp/nix-offload-${TOKEN}/ssh_config`
    })
    expect(env.NIX_SSHOPTS).toBeUndefined()
  })

  it('leaves the environment as it is for a build-hook plan', () => {
    const plan = planOf(settings(), TRUSTED_DAEMON, TOKEN)
    expect(plan.sshConfigFile).toBeUndefined()
    expect(nixEnvironment(plan, env)).toEqual(env)
  })
})

describe("the private key when the runner user's own nix connects", () => {
  const TEMP = '/home/runner/work/_temp'
  const cases: [string, Plan][] = [
    ['remote-store', makeStorePlan(settings(), [BUILDER], TOKEN, TEMP)],
    [
      'single-user',
      planOf(
        settings(),
        facts({ store: 'local', trusted: true, serviceManager: 'none', sshHome: '/home/runner' }),
        TOKEN
      )
    ]
  ]

  it.each(cases)('%s: no file of the plan holds it, and an agent of the step does', (_path, plan) => {
    const written = plan.steps.flatMap(s => (s.kind === 'write' || s.kind === 'block' ? [s] : []))
    expect(written.filter(s => s.content.includes('PRIVATE KEY'))).toEqual([])
    expect(step(plan, 'write', `${plan.workDir}/key.pub`)).toEqual({
      kind: 'write',
      path: `${plan.workDir}/key.pub`,
      mode: 0o644,
      content: `ssh-ed25519 ${HOST_KEY.blob}\n`
    })
    expect(step(plan, 'key-agent')).toEqual({
      kind: 'key-agent',
      socket: `${plan.workDir}/agent`,
      key: KEY_TEXT
    })
  })

  it.each(cases)('%s: the ssh config takes exactly that key from the agent', (_path, plan) => {
    const lines = plan.steps
      .flatMap(s => (s.kind === 'write' || s.kind === 'block' ? [s.content] : []))
      .join('\n')
      .split('\n')
    expect(lines.filter(line => line.trim().startsWith('IdentityFile'))).toEqual([
      `  IdentityFile "${plan.workDir}/key.pub"`
    ])
    expect(lines).toContain(`  IdentityAgent "${plan.workDir}/agent"`)
    expect(lines).toContain('  IdentitiesOnly yes')
  })

  it("keeps the key file in root's own directory when the daemon connects", () => {
    const plan = planOf(settings(), TRUSTED_DAEMON, TOKEN)
    expect(step(plan, 'write', `${WORK_DIR}/key`).content).toBe(KEY_TEXT)
    expect(plan.steps.some(s => s.kind === 'key-agent')).toBe(false)
  })
})
