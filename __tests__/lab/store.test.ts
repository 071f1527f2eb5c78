import { chmodSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  builder,
  builderCtl,
  builderInputs,
  chownTree,
  freshDerivation,
  HOST_NIX,
  hostPath,
  inStore,
  type Lab,
  loadLab,
  reportOf,
  restartRunnerDaemon,
  runOnHost,
  runMain,
  runPost,
  startMainUntil,
  type StepResult,
  visibleLog,
  derivationFile
} from './harness.js'
import { watchFiles, watchMasters } from './setup.js'

const lab: Lab = loadLab()
const a = builder(lab, 'a')
const b = builder(lab, 'b')

interface Report {
  strategy?: string
  configPath?: string
  outputsOnBuilder?: boolean
  derivations: {
    name: string
    machine: string
    proof?: { log: boolean; store?: boolean; problem?: string }
  }[]
  builders: { storeUri: string; port: number; bytesSent?: number; bytesReceived?: number }[]
  outPaths: string[]
}

/** The lab's builder inputs with `auto`: the default a user gets. */
function autoInputs(name = 'a'): Record<string, string> {
  return { ...builderInputs(lab, name), strategy: 'auto' }
}

/** A `sudo` first on PATH that records each call and refuses: the remote-store strategy must never call it. */
function sudoTrap(): { env: Record<string, string>; calls: () => string } {
  const dir = `/tmp/nix-offload-sudo-trap-${Date.now()}`
  mkdirSync(hostPath(lab, dir), { recursive: true })
  const log = `${dir}/calls`
  writeFileSync(hostPath(lab, log), '')
  chmodSync(hostPath(lab, log), 0o666)
  writeFileSync(hostPath(lab, `${dir}/sudo`), `#!/bin/sh\necho "sudo $*" >> ${log}\nexit 1\n`, {
    mode: 0o755
  })
  return {
    env: { PATH: `${dir}:/usr/local/bin:/usr/bin:/bin` },
    calls: () => readFileSync(hostPath(lab, log), 'utf8')
  }
}

/** A graph of `layers` layers, one derivation each, every layer depending on the one below: `-f … top`. */
function layered(layers: number): { args: string; names: string[] } {
  const lines = Array.from({ length: layers }, (_, index) => {
    const n = index + 1
    const dep = n === 1 ? '' : `dep = l${n - 1}; `
    return (
      `  l${n} = builtins.derivation { name = "nix-offload-test-\${nonce}-layer${n}"; inherit system; ` +
      `builder = "/bin/sh"; ${dep}args = [ "-c" "echo layer ${n} \${nonce} > $out" ]; };`
    )
  })
  const { args, nonce } = derivationFile(lab, lines.join('\n'), { recursive: true })
  return {
    args,
    names: Array.from({ length: layers }, (_, index) => `nix-offload-test-${nonce}-layer${index + 1}`)
  }
}

async function mainAndPost(
  inputs: Record<string, string>,
  env: Record<string, string> = {}
): Promise<StepResult> {
  const noNewMasters = await watchMasters(lab)
  const main = await runMain(lab, inputs, { env })
  const post = await runPost(lab, main)
  expect(post.code, post.stdout).toBe(0)
  await noNewMasters()
  return main
}

describe('the remote-store strategy', () => {
  it('auto builds a fresh derivation in the builder’s store, proves it from that store, copies it back, and touches nothing of root’s nor calls sudo', async () => {
    const drv = freshDerivation(lab)
    const trap = sudoTrap()
    const filesKept = watchFiles(lab)
    const noNewMasters = await watchMasters(lab)
    const main = await runMain(
      lab,
      { ...autoInputs(), args: drv.args, installables: 'drv' },
      { env: trap.env }
    )
    expect(main.code, visibleLog(main)).toBe(0)
    // Before post: nothing of root's or in /etc/nix was ever written, and main closed its own SSH master.
    filesKept()
    await noNewMasters()
    expect(visibleLog(main)).toMatch(/Strategy: remote-store: every installable goes whole to one builder/)
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '1', 'local-builds': '0' })
    const report = reportOf<Report>(lab, main)
    expect(report).toMatchObject({ strategy: 'remote-store', configPath: 'remote-store' })
    expect(report.derivations).toHaveLength(1)
    expect(report.derivations[0]).toMatchObject({ name: drv.name, proof: { log: true, store: true } })
    const [outPath = ''] = report.outPaths
    expect(inStore(a.storeDir, outPath)).toBe(true)
    expect(inStore(hostPath(lab, '/nix/store'), outPath)).toBe(true)
    // Bytes from Nix's copy activities: the derivation went up, the output came back.
    expect(report.builders[0]?.bytesSent).toBeGreaterThan(0)
    expect(report.builders[0]?.bytesReceived).toBeGreaterThan(0)
    expect(main.summary).toMatch(/\| `nixbuilder@127\.0\.0\.1:\d+` \| [\d.]+ (B|KiB) \| [\d.]+ (B|KiB) \|/)
    const post = await runPost(lab, main)
    expect(post.code).toBe(0)
    filesKept()
    await noNewMasters()
    expect(trap.calls()).toBe('')
  })

  it('with copy-back false leaves the outputs on the builder and lists them as they are there', async () => {
    const drv = freshDerivation(lab)
    const main = await mainAndPost({
      ...autoInputs(),
      'copy-back': 'false',
      args: drv.args,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    expect(report.outputsOnBuilder).toBe(true)
    const [outPath = ''] = report.outPaths
    expect(main.outputs['out-paths']).toBe(outPath)
    expect(inStore(a.storeDir, outPath)).toBe(true)
    expect(inStore(hostPath(lab, '/nix/store'), outPath)).toBe(false)
    expect(report.builders[0]?.bytesReceived).toBe(0)
    expect(visibleLog(main)).toContain("'copy-back: false': the outputs stay in the builder's store")
  })

  it('leaves the out-links `args` asks for, as a plain build does, each a GC root; none with copy-back false', async () => {
    const drv = freshDerivation(lab)
    const dir = `/tmp/nix-offload-links-${drv.nonce}`
    mkdirSync(hostPath(lab, dir))
    chownTree(hostPath(lab, dir), lab.runnerUser)
    const main = await mainAndPost({
      ...autoInputs(),
      args: `${drv.args} -o ${dir}/result`,
      installables: 'drv'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    const [outPath = ''] = reportOf<Report>(lab, main).outPaths
    expect(outPath).toMatch(/^\/nix\/store\//)
    expect(readlinkSync(hostPath(lab, `${dir}/result`))).toBe(outPath)
    // An indirect GC root, as `nix build -o` makes: the daemon's auto roots name the link.
    const autoRoots = hostPath(lab, '/nix/var/nix/gcroots/auto')
    const roots = readdirSync(autoRoots).map(name => readlinkSync(`${autoRoots}/${name}`))
    expect(roots).toContain(`${dir}/result`)

    const kept = freshDerivation(lab)
    const onBuilder = await mainAndPost({
      ...autoInputs(),
      'copy-back': 'false',
      args: `${kept.args} -o ${dir}/kept`,
      installables: 'drv'
    })
    expect(onBuilder.code, visibleLog(onBuilder)).toBe(0)
    expect(readdirSync(hostPath(lab, dir))).toEqual(['result'])
    expect(visibleLog(onBuilder)).toContain(
      "The out-links 'args' asks for were not made: with 'copy-back: false' the outputs stay in the builder's store."
    )
  })

  it('brings back only the requested output of a three-layer graph: the intermediate ones never reach the runner', async () => {
    const graph = layered(3)
    const main = await mainAndPost({ ...autoInputs(), args: graph.args, installables: 'l3' })
    expect(main.code, visibleLog(main)).toBe(0)
    const report = reportOf<Report>(lab, main)
    expect(report.derivations.map(d => d.name).sort()).toEqual([...graph.names].sort())
    for (const derivation of report.derivations) expect(derivation.proof).toMatchObject({ store: true })
    const runnerStore = hostPath(lab, '/nix/store')
    const [top = ''] = report.outPaths
    expect(inStore(runnerStore, top)).toBe(true)
    for (const name of graph.names.slice(0, 2)) {
      const listing = readdirSync(runnerStore).filter(entry => entry.endsWith(`-${name}`))
      expect(listing, name).toEqual([])
      const onBuilder = readdirSync(a.storeDir).filter(entry => entry.endsWith(`-${name}`))
      expect(onBuilder.length, name).toBe(1)
    }
  })

  it('sends each installable to the builder whose features it needs, each built in that builder’s store', async () => {
    const body = [
      ['da', 'lab-a'],
      ['db', 'lab-b']
    ]
      .map(
        ([attr, feature]) =>
          `  ${attr} = builtins.derivation { name = "nix-offload-test-\${nonce}-${attr}"; inherit system; ` +
          `requiredSystemFeatures = [ "${feature}" ]; builder = "/bin/sh"; args = [ "-c" "echo \${nonce} > $out" ]; };`
      )
      .join('\n')
    const first = derivationFile(lab, body)
    const main = await mainAndPost({
      ...autoInputs('a'),
      'supported-features': 'lab-a',
      builders: `ssh-ng://${b.user}@${b.host}:${b.port} - - 1 1 lab-b`,
      'known-hosts': `[${b.host}]:${b.port} ${b.hostPublicKey}`,
      args: first.args,
      installables: 'da\ndb'
    })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toMatch(/Strategy: remote-store: /)
    const report = reportOf<Report>(lab, main)
    const uriOf = (port: number): string =>
      report.builders.find(entry => entry.port === port)?.storeUri ?? '?'
    const machines = Object.fromEntries(report.derivations.map(d => [d.name.split('-').pop(), d.machine]))
    expect(machines).toEqual({ da: uriOf(a.port), db: uriOf(b.port) })
    for (const derivation of report.derivations) expect(derivation.proof).toMatchObject({ store: true })
  })
})

describe('a builder whose Nix does not trust its ssh user', () => {
  it('builds in its own store all the same: only derivations and sources go up, both content-addressed', async () => {
    const conf = readFileSync(a.nixConf, 'utf8')
    writeFileSync(a.nixConf, conf.replace(/^trusted-users = .*$/m, 'trusted-users = root'))
    await builderCtl(lab, 'restart', 'a')
    try {
      // A local source the builder has never seen, and a derivation that reads it.
      const drv = derivationFile(
        lab,
        `  drv = builtins.derivation { name = "nix-offload-test-\${nonce}"; inherit system; src = ./source.txt; ` +
          `builder = "/bin/sh"; args = [ "-c" "read line < $src; echo \\"$line\\" > $out" ]; };`
      )
      const dir = drv.file.slice(0, drv.file.lastIndexOf('/'))
      writeFileSync(hostPath(lab, `${dir}/source.txt`), `source ${drv.nonce}\n`)
      const main = await mainAndPost({
        ...builderInputs(lab, 'a'),
        strategy: 'remote-store',
        args: drv.args,
        installables: 'drv'
      })
      expect(main.code, visibleLog(main)).toBe(0)
      expect(main.outputs.confirmed).toBe('true')
      expect(visibleLog(main)).toMatch(/user not trusted|trusted ✗|untrusted|not trusted/)
      const out = main.outputs['out-paths'] ?? ''
      expect(inStore(a.storeDir, out)).toBe(true)
      expect(readFileSync(hostPath(lab, out), 'utf8')).toBe(`source ${drv.nonce}\n`)
    } finally {
      writeFileSync(a.nixConf, conf)
      await builderCtl(lab, 'restart', 'a')
    }
  })
})

describe('a builder whose store is full', () => {
  const c = builder(lab, 'c')
  // The builder's nix-daemon runs in a mount namespace of its own (Nix unshares one at start), where its builds run:
  // the store is mounted in there.
  const daemonPid = (): string =>
    readFileSync(`/var/lib/nix-offload-lab/builders/${c.id}/nix-daemon.pid`, 'utf8').trim()
  /** The /nix/store that builder c's daemons see, inside its mount namespace (and chroot, for a newer Nix). */
  const storeInside = (): string => {
    const root =
      c.nix === HOST_NIX ? '' : `/var/lib/nix-offload-lab-rootfs/${c.nix === '2.26' ? 'trixie' : 'sid'}`
    return `${root}/nix/store`
  }
  /** Runs `argv` in builder c's daemon's mount namespace, and fails the test if it fails. */
  const inDaemonNamespace = async (argv: string[]): Promise<void> => {
    const result = await runOnHost(['nsenter', '-t', daemonPid(), '-m', ...argv])
    if (result.code !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr}`)
  }

  it('fails with the store-full diagnosis, naming the builder, when the build there runs out of space', async () => {
    // A 2 MiB store for the length of the test: an 8 MiB output cannot fit. What the test writes there goes with it.
    // A store no earlier build opened has no directory yet (a fresh lab): make it, or there is nothing to mount on.
    await inDaemonNamespace(['mkdir', '-p', storeInside()])
    await inDaemonNamespace(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', storeInside()])
    try {
      const drv = derivationFile(
        lab,
        `  drv = builtins.derivation { name = "nix-offload-test-\${nonce}"; inherit system; builder = "/bin/sh"; ` +
          `args = [ "-c" "echo \${nonce}; /bin/dd if=/dev/zero of=$out bs=1M count=8" ]; };`
      )
      const main = await mainAndPost({
        ...builderInputs(lab, 'c'),
        strategy: 'remote-store',
        args: drv.args,
        installables: 'drv'
      })
      expect(main.code, visibleLog(main)).toBe(1)
      const error = visibleLog(main)
        .split('\n')
        .find(line => /^::error title=[^:]*::The store of builder /.test(line))
      expect(error, visibleLog(main)).toBeDefined()
      expect(error).toContain(`The store of builder nixbuilder@127.0.0.1:${c.port} is full`)
      expect(main.outputs.confirmed).toBe('false')
    } finally {
      await inDaemonNamespace(['umount', storeInside()])
    }
  })
})

describe('a copy back that fails', () => {
  it('fails naming the builder and the copy, after the build there succeeded, and leaves the runner as it was', async () => {
    // The runner's nix-daemon stops trusting the runner user while the build runs in the builder's store, so the
    // copy back brings unsigned paths to a store that now refuses them. The build outlasts the daemon's restart even on
    // a slow machine: a copy back that finds no daemon at all fails before it starts, another case.
    const nixConf = hostPath(lab, '/etc/nix/nix.conf')
    const original = readFileSync(nixConf)
    const filesKept = watchFiles(lab)
    const drv = freshDerivation(lab, { seconds: 10 })
    const step = await startMainUntil(
      lab,
      { ...autoInputs(), strategy: 'remote-store', args: drv.args, installables: 'drv' },
      `building ${drv.nonce}`
    )
    let main: StepResult
    try {
      writeFileSync(nixConf, original.toString().replace(/^trusted-users = .*$/m, 'trusted-users = root'))
      await restartRunnerDaemon(lab)
      main = await step.done
    } finally {
      writeFileSync(nixConf, original)
      await restartRunnerDaemon(lab)
    }
    expect(main.code, visibleLog(main)).toBe(1)
    const error = visibleLog(main)
      .split('\n')
      .find(line => line.startsWith('::error'))
    expect(error, visibleLog(main)).toContain(
      `::The build in the store of builder nixbuilder@127.0.0.1:${a.port} succeeded, but copying its ` +
        'outputs back to the runner failed: '
    )
    expect(error).toContain(
      "Fix: check the runner's free space and that its nix-daemon trusts the runner user"
    )
    // Built there, not brought back.
    const output = (entry: string): boolean => entry.endsWith(`-${drv.name}`)
    expect(readdirSync(a.storeDir).filter(output)).toHaveLength(1)
    expect(readdirSync(hostPath(lab, '/nix/store')).filter(output)).toEqual([])
    expect((await runPost(lab, main)).code).toBe(0)
    filesKept()
  })
})

describe('import-from-derivation in the builder store', () => {
  /** An expression whose top derivation needs, at evaluation, the output of another (import-from-derivation). */
  function withIfd(): { args: string; nonce: string } {
    const first = freshDerivation(lab)
    writeFileSync(
      hostPath(lab, first.file),
      `{ nonce, system }: let
  gen = builtins.derivation { name = "nix-offload-test-\${nonce}-ifd"; inherit system; builder = "/bin/sh";
    args = [ "-c" "echo '\\"from-ifd\\"' > $out" ]; };
  value = import gen;
in {
  top = builtins.derivation { name = "nix-offload-test-\${nonce}-top"; inherit system; builder = "/bin/sh";
    args = [ "-c" "echo \${value} > $out" ]; };
}
`
    )
    return { args: first.args, nonce: first.nonce }
  }

  it('auto sends it through the build hook, which offloads the imported derivation too, and says why', async () => {
    const drv = withIfd()
    const main = await mainAndPost({ ...autoInputs(), args: drv.args, installables: 'top' })
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toContain(
      'Strategy: hook: remote-store does not fit: evaluating them needs a derivation'
    )
    expect(main.outputs).toMatchObject({ confirmed: 'true', 'remote-builds': '2', 'local-builds': '0' })
    const onBuilder = readdirSync(a.storeDir).filter(entry =>
      entry.endsWith(`-nix-offload-test-${drv.nonce}-ifd`)
    )
    expect(onBuilder).toHaveLength(1)
  })

  it('an explicit remote-store refuses it before writing anything, naming the cause', async () => {
    const drv = withIfd()
    const filesKept = watchFiles(lab)
    const main = await mainAndPost({
      ...autoInputs(),
      strategy: 'remote-store',
      args: drv.args,
      installables: 'top'
    })
    expect(main.code).toBe(1)
    expect(visibleLog(main)).toContain(
      "::error title=nix-offload%3A input strategy::Input 'strategy: remote-store' cannot serve this run: evaluating them needs a derivation built first (import-from-derivation)"
    )
    filesKept()
  })
})

describe('auto', () => {
  it('chooses the hook for a configure-only run, and says why', async () => {
    const main = await mainAndPost(autoInputs())
    expect(main.code, visibleLog(main)).toBe(0)
    expect(visibleLog(main)).toContain(
      "Strategy: hook: no build was requested: later steps' `nix build` offloads"
    )
  })

  it('refuses remote-store for a configure-only run before writing anything, naming the input', async () => {
    const filesKept = watchFiles(lab)
    const main = await runMain(lab, { ...autoInputs(), strategy: 'remote-store' })
    expect(main.code).toBe(1)
    expect(visibleLog(main)).toContain(
      "::error title=nix-offload%3A input strategy::Input 'strategy: remote-store' cannot serve this run: no build"
    )
    filesKept()
    expect((await runPost(lab, main)).code).toBe(0)
  })

  it('chooses the hook when the runner user is not trusted (the outputs could not come back), and says why', async () => {
    const nixConf = hostPath(lab, '/etc/nix/nix.conf')
    const original = readFileSync(nixConf)
    writeFileSync(nixConf, original.toString().replace(/^trusted-users = .*$/m, 'trusted-users = root'))
    await restartRunnerDaemon(lab)
    try {
      const drv = freshDerivation(lab)
      const main = await mainAndPost({ ...autoInputs(), args: drv.args, installables: 'drv' })
      expect(main.code, visibleLog(main)).toBe(0)
      expect(visibleLog(main)).toContain(
        "Strategy: hook: remote-store does not fit: the runner's nix-daemon does not trust the runner user"
      )
      expect(main.outputs.confirmed).toBe('true')
    } finally {
      writeFileSync(nixConf, original)
      await restartRunnerDaemon(lab)
    }
  })
})
