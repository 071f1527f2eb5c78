/**
 * Runs the bundled action the way the Actions runner does: inputs as INPUT_* variables, the GITHUB_OUTPUT, GITHUB_STATE,
 * GITHUB_ENV and GITHUB_STEP_SUMMARY files, `dist/main` (or the canary action's `dist/canary`) as the non-root runner
 * user, then `dist/post` with the saved state as STATE_* variables. Everything here talks to the real lab
 * (lab/up.sh): nix-daemon, sshd, builders.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync
} from 'node:fs'
import { basename, join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
const LAB_JSON = '/var/lib/nix-offload-lab/lab.json'

export interface LabBuilder {
  /** `a` or `b`, the name tests use, whatever the builder's Nix. */
  name: string
  /** The name lab/builder.sh knows it by (`a` on the host's Nix, or `a-2.34` on Nix 2.34). */
  id: string
  /** Its Nix version: the host's own (2.8 on Debian 12, 2.18 on Ubuntu 24.04), 2.26 or 2.34. */
  nix: string
  host: string
  port: number
  user: string
  hostPublicKey: string
  storeDir: string
  sshdLog: string
  /** The builder's own nix.conf (its /etc/nix inside its namespace). */
  nixConf: string
  /** Its daemon's `max-jobs` (lab/up.sh writes it in that nix.conf). */
  maxJobs: number
}

/** The runner the tests drive: the host's own Nix, or 2.26 or 2.34 in a root filesystem (lab/runner.sh). */
export interface LabRunner {
  nix: string
  /** The runner's root filesystem on the host; empty for the host itself. */
  root: string
  daemonLog: string
}

export interface Lab {
  runner: LabRunner
  runnerUser: string
  clientKey: string
  otherKey: string
  /** A key authorised with `command="nix-daemon --stdio",restrict`: it runs only the Nix daemon. */
  daemonOnlyKey: string
  /** A builder account whose sessions sshd forces to `nix-daemon --stdio` (NixOS's nix.sshServe, ssh-ng). */
  daemonOnlyUser: string
  /** A builder account whose sessions sshd forces to `nix-store --serve --write` (NixOS's nix.sshServe, ssh). */
  serveOnlyUser: string
  localSystem: string
  localDaemonCtl: string
  builderCtl: string
  builders: LabBuilder[]
}

interface LabFile extends Omit<Lab, 'runner' | 'builders'> {
  /** The host's own Nix, major.minor (lab/up.sh, from `nix --version`); absent in a lab.json of an older up.sh. */
  hostNix?: string
  runners: LabRunner[]
  builders: (Omit<LabBuilder, 'id'> & { name: string })[]
}

/**
 * The host's own Nix (major.minor), as lab/up.sh recorded it: 2.8 on Debian 12, 2.18 on Ubuntu 24.04. It is the Nix
 * of the runner with no root filesystem and of builders `a`, `b` and `c`. Empty when the lab is not set up.
 */
export const HOST_NIX = ((): string => {
  if (!existsSync(LAB_JSON)) return ''
  const file = JSON.parse(readFileSync(LAB_JSON, 'utf8')) as LabFile
  return file.hostNix ?? file.runners.find(runner => runner.root === '')?.nix ?? ''
})()

/** The Nix versions under test: LAB_RUNNER_NIX and LAB_BUILDER_NIX (the host's, 2.26 or 2.34; the host's when unset). */
export const RUNNER_NIX = process.env.LAB_RUNNER_NIX ?? HOST_NIX
export const BUILDER_NIX = process.env.LAB_BUILDER_NIX ?? HOST_NIX

/** True if Nix `version` (e.g. `2.8`, `2.18.1`) is `minimum` or later, compared number by number. */
export function nixAtLeast(version: string, minimum: string): boolean {
  const parts = (v: string): number[] => v.split('.').map(part => Number.parseInt(part, 10) || 0)
  const [have, want] = [parts(version), parts(minimum)]
  for (let i = 0; i < Math.max(have.length, want.length); i++) {
    const difference = (have[i] ?? 0) - (want[i] ?? 0)
    if (difference !== 0) return difference > 0
  }
  return true
}

export function loadLab(): Lab {
  if (!existsSync(LAB_JSON))
    throw new Error(`The lab is not set up (${LAB_JSON} is missing): run lab/up.sh as root.`)
  const file = JSON.parse(readFileSync(LAB_JSON, 'utf8')) as LabFile
  const runner = file.runners.find(r => r.nix === RUNNER_NIX)
  if (runner === undefined) throw new Error(`The lab has no runner on Nix ${RUNNER_NIX}: run lab/up.sh.`)
  const builders = file.builders
    .filter(b => b.nix === BUILDER_NIX)
    .map(b => ({ ...b, id: b.name, name: b.name.replace(/-.*/, '') }))
  if (builders.length === 0) throw new Error(`The lab has no builders on Nix ${BUILDER_NIX}: run lab/up.sh.`)
  if (runner.root !== '') {
    // The runner in a root filesystem runs the bundle from there, as the host runner runs it from the checkout.
    cpSync(join(ROOT, 'dist'), join(runner.root, DIST_IN_ROOT), { recursive: true, force: true })
  }
  // lab.json names the scripts of the checkout that wrote it; use this checkout's.
  return {
    ...file,
    runner,
    builders,
    localDaemonCtl: join(ROOT, 'lab/local-daemon.sh'),
    builderCtl: join(ROOT, 'lab/builder.sh')
  }
}

const DIST_IN_ROOT = '/opt/nix-offload/dist'
const RUNNER_CTL = join(ROOT, 'lab/runner.sh')

/** Where a path of the runner's (its /etc/nix, /nix/store, /tmp) is on the host. */
export function hostPath(lab: Lab, path: string): string {
  return lab.runner.root + path
}

/** argv that runs `argv` on the runner: in its namespace and root filesystem, for a newer Nix. */
function onRunner(lab: Lab, argv: string[]): string[] {
  if (lab.runner.root === '') return argv
  // What `lab/runner.sh VERSION exec` does, without its bash and lib.sh (about 40 ms a step): the holder's mount
  // namespace, chrooted. The pid file is checked against the holder's command line, as runner.sh checks it.
  const holder = readFileSync(`/var/lib/nix-offload-lab/runners/${lab.runner.nix}/holder.pid`, 'utf8').trim()
  const command = readFileSync(`/proc/${holder}/cmdline`, 'utf8').replace(/\0/g, ' ')
  if (!command.includes(`nix-offload-lab-runner-${lab.runner.nix}`))
    throw new Error(`runner ${lab.runner.nix} is not running: lab/runner.sh ${lab.runner.nix} start`)
  return ['nsenter', '--target', holder, '--mount', '/usr/sbin/chroot', lab.runner.root, ...argv]
}

/** The runner's Node: the host's, or the copy inside the root filesystem (lab/rootfs.sh). */
function runnerNode(lab: Lab): string {
  return lab.runner.root === '' ? process.execPath : '/usr/local/bin/node'
}

/** Runs a lab script (builder.sh, runner.sh) on the host as root. */
export async function labCtl(argv: string[]): Promise<void> {
  const result = await runOnHost(argv)
  if (result.code !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stdout}${result.stderr}`)
}

/** lab/builder.sh COMMAND on the builder the tests call `name`, on the Nix under test. */
export async function builderCtl(lab: Lab, command: string, name: string): Promise<void> {
  await labCtl([lab.builderCtl, command, builder(lab, name).id])
}

/** Restarts the runner's nix-daemon, e.g. after a test edits its nix.conf (the daemon reads it only at start). */
export async function restartRunnerDaemon(lab: Lab): Promise<void> {
  await labCtl([RUNNER_CTL, lab.runner.nix, 'restart'])
}

export function builder(lab: Lab, name: string): LabBuilder {
  const found = lab.builders.find(b => b.name === name)
  if (found === undefined) throw new Error(`no lab builder ${name}`)
  return found
}

/**
 * The inputs that point the action at one lab builder, with Nix's build hook: the tests of the remote-store strategy
 * (and of `auto`) say so themselves.
 */
export function builderInputs(lab: Lab, name = 'a'): Record<string, string> {
  const b = builder(lab, name)
  return {
    strategy: 'hook',
    host: b.host,
    port: String(b.port),
    user: b.user,
    'ssh-private-key': readFileSync(lab.clientKey, 'utf8'),
    'host-public-key': b.hostPublicKey
  }
}

export type RunAs = 'runner' | 'root'

export interface StepResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** The step's working directory, holding the GITHUB_* files. */
  dir: string
  outputs: Record<string, string>
  state: Record<string, string>
  env: Record<string, string>
  summary: string
  /** Raw text of every file the step could leave a secret in. */
  files: string
  runAs: RunAs
}

export interface StepOptions {
  runAs?: RunAs
  env?: Record<string, string>
  /** The step's working directory (and RUNNER_TEMP), made by newStepDir; a fresh one by default. */
  dir?: string
  /** A command of the host's that runs the step, e.g. `/usr/bin/time -o FILE` to measure it as a whole. */
  wrap?: string[]
}

/** A fresh step directory, as the runner sees it (under its root filesystem's /tmp for a newer Nix). */
export function newStepDir(lab: Lab, runAs: RunAs): string {
  const dir = mkdtempSync(hostPath(lab, '/tmp/nix-offload-step-')).slice(lab.runner.root.length)
  for (const name of ['output', 'state', 'env', 'summary']) writeFileSync(hostPath(lab, join(dir, name)), '')
  if (runAs === 'runner') chownTree(hostPath(lab, dir), lab.runnerUser)
  return dir
}

/** Main steps (the build's or the canary's) still running, each with its log so far, for withinTime to stop. */
const runningMains = new Map<ChildProcess, () => string>()

/**
 * Starts `dist/main` (or `dist/post`, or `dist/canary`: the canary action's main) and returns the child and its result,
 * so a test can kill it half-way.
 */
export function startStep(
  lab: Lab,
  entry: 'main' | 'post' | 'canary',
  variables: Record<string, string>,
  options: StepOptions & { dir?: string } = {}
): { child: ChildProcess; done: Promise<StepResult>; dir: string } {
  const runAs = options.runAs ?? 'runner'
  const dir = options.dir ?? newStepDir(lab, runAs)
  const home = runAs === 'runner' ? `/home/${lab.runnerUser}` : '/root'
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    USER: runAs === 'runner' ? lab.runnerUser : 'root',
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_ENV: join(dir, 'env'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    RUNNER_TEMP: dir,
    ...options.env,
    ...variables
  }
  const script = join(lab.runner.root === '' ? join(ROOT, 'dist') : DIST_IN_ROOT, entry, 'index.js')
  const [command = '', ...args] = [
    ...(options.wrap ?? []),
    ...runnerArgv(lab, runAs, [runnerNode(lab), script])
  ]
  const child = spawn(command, args, {
    cwd: hostPath(lab, dir),
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  if (entry !== 'post') {
    runningMains.set(child, () => stdout)
    child.on('close', () => runningMains.delete(child))
  }
  child.stdout?.on('data', chunk => (stdout += String(chunk)))
  child.stderr?.on('data', chunk => (stderr += String(chunk)))
  const done = new Promise<StepResult>((resolvePromise, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) =>
      resolvePromise(collect(lab, dir, runAs, code, signal, stdout, stderr))
    )
  })
  return { child, done, dir }
}

/**
 * Runs `body`, a test's scenario that runs main and post steps, within `ms`. When it is still running then, every
 * main step still running is stopped as the Actions runner cancels a step (SIGTERM, SIGKILL 15 s later); the scenario
 * then goes on to their post steps, which undo what they did, and to its own clean-up, and the test fails naming the
 * bound. A test that ran out of vitest's own timeout would instead go on in the background, its jobs and its changes to
 * the lab still live while the next tests run.
 */
export async function withinTime<T>(ms: number, body: () => Promise<T>): Promise<T> {
  let expired = false
  // The child is sudo (or the command that enters the runner's root), which passes SIGTERM on; SIGKILL it cannot, so
  // that goes to its children too.
  const stop = (signal: NodeJS.Signals): void => {
    for (const child of runningMains.keys()) {
      if (signal === 'SIGKILL' && child.pid !== undefined)
        void runOnHost(['pkill', '-KILL', '-P', String(child.pid)])
      child.kill(signal)
    }
  }
  let killTimer: NodeJS.Timeout | undefined
  // Where each stopped step was, so that the failure says what it waited for.
  let lastLines = ''
  const term = setTimeout(() => {
    expired = true
    for (const log of runningMains.values())
      lastLines += `\n--- a stopped main step's last lines:\n${log().split('\n').slice(-12).join('\n')}`
    stop('SIGTERM')
    killTimer = setTimeout(() => stop('SIGKILL'), 15_000)
  }, ms)
  const outOfTime = (): Error =>
    new Error(
      `the scenario ran past ${ms / 1000} s: its main steps were stopped, and their post steps ran${lastLines}`
    )
  let result: T
  try {
    result = await body()
  } catch (error) {
    if (expired) throw new Error(`${outOfTime().message}\n--- then: ${String(error)}`, { cause: error })
    throw error
  } finally {
    clearTimeout(term)
    clearTimeout(killTimer)
  }
  if (expired) throw outOfTime()
  return result
}

export async function runMain(
  lab: Lab,
  inputs: Record<string, string>,
  options: StepOptions = {}
): Promise<StepResult> {
  return startStep(lab, 'main', inputVariables(inputs), options).done
}

/** The canary action's main step (canary/action.yml, `dist/canary`); its post step is the build's, runPost. */
export async function runCanary(
  lab: Lab,
  inputs: Record<string, string>,
  options: StepOptions = {}
): Promise<StepResult> {
  return startStep(lab, 'canary', inputVariables(inputs), options).done
}

/** Inputs as the runner passes them: INPUT_<NAME>, with the name's dashes kept. */
function inputVariables(inputs: Record<string, string>): Record<string, string> {
  const variables: Record<string, string> = {}
  for (const [name, value] of Object.entries(inputs)) variables[`INPUT_${name.toUpperCase()}`] = value
  return variables
}

/**
 * Starts the main step and returns once its log shows `marker` (e.g. a derivation's first build line), or once
 * `marker` holds for the log so far, so a test can break something half-way; `done` settles when the step ends.
 */
export async function startMainUntil(
  lab: Lab,
  inputs: Record<string, string>,
  marker: string | ((seen: string) => boolean)
): Promise<{ child: ChildProcess; done: Promise<StepResult>; dir: string; seen: string }> {
  const step = startStep(lab, 'main', inputVariables(inputs))
  const reached = typeof marker === 'string' ? (seen: string) => seen.includes(marker) : marker
  let seen = ''
  await new Promise<void>((resolve, reject) => {
    step.child.stdout?.on('data', chunk => {
      seen += String(chunk)
      if (reached(seen)) resolve()
    })
    step.child.on('close', () =>
      reject(new Error(`main ended before "${String(marker)}" appeared:\n${seen}`))
    )
  })
  return { ...step, seen }
}

/** Runs the post step with the state main saved, in main's working directory, as the same user. */
export async function runPost(lab: Lab, main: StepResult, options: StepOptions = {}): Promise<StepResult> {
  const variables: Record<string, string> = {}
  for (const [name, value] of Object.entries(main.state)) variables[`STATE_${name}`] = value
  const dir = newStepDir(lab, main.runAs)
  return startStep(lab, 'post', variables, { runAs: main.runAs, ...options, dir }).done
}

function collect(
  lab: Lab,
  dir: string,
  runAs: RunAs,
  code: number | null,
  signal: NodeJS.Signals | null,
  stdout: string,
  stderr: string
): StepResult {
  const read = (name: string): string => readFileSync(hostPath(lab, join(dir, name)), 'utf8')
  const report = parseFileCommands(read('output')).report
  const files = [read('output'), read('state'), read('env'), read('summary')]
  if (report !== undefined && existsSync(hostPath(lab, report)))
    files.push(readFileSync(hostPath(lab, report), 'utf8'))
  return {
    code,
    signal,
    stdout,
    stderr,
    dir,
    outputs: parseFileCommands(read('output')),
    state: parseFileCommands(read('state')),
    env: parseFileCommands(read('env')),
    summary: read('summary'),
    files: files.join('\n'),
    runAs
  }
}

/** `name<<delimiter\nvalue\ndelimiter` records, as @actions/core writes them; a later value wins, as on the runner. */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<=]+)<<(.+)$/.exec(lines[i] ?? '')
    if (match === null) continue
    const [, name = '', delimiter = ''] = match
    const end = lines.indexOf(delimiter, i + 1)
    values[name] = lines.slice(i + 1, end).join('\n')
    i = end
  }
  return values
}

/** What the log shows: the runner consumes `::add-mask::` lines and never prints them. */
export function visibleLog(result: StepResult): string {
  return (result.stdout + result.stderr)
    .split('\n')
    .filter(line => !line.startsWith('::add-mask::'))
    .join('\n')
}

/** The secret lines of a private key file (the base64 body; the BEGIN/END armour is not secret). */
export function secretLines(keyFile: string): string[] {
  return readFileSync(keyFile, 'utf8')
    .split('\n')
    .filter(line => line.length >= 8 && !line.startsWith('-----'))
}

/** Every file (and directory) under the given roots, with mode, owner and content hash: compare before and after. */
export function snapshot(roots: string[]): Record<string, string> {
  const entries: Record<string, string> = {}
  const visit = (path: string): void => {
    if (!existsSync(path)) return
    const stat = lstatSync(path)
    const head = `${(stat.mode & 0o7777).toString(8)} ${stat.uid}:${stat.gid}`
    if (stat.isDirectory()) {
      entries[path] = `${head} dir`
      for (const name of readdirSync(path).sort()) visit(join(path, name))
    } else if (stat.isFile()) {
      entries[path] = `${head} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`
    } else {
      entries[path] = `${head} other`
    }
  }
  for (const root of roots) visit(root)
  return entries
}

/** The report file a step wrote, parsed. */
export function reportOf<T>(lab: Lab, result: StepResult): T {
  return JSON.parse(readFileSync(hostPath(lab, result.outputs.report ?? ''), 'utf8')) as T
}

/** The runner's files the action may touch, as the host sees them. */
export function watched(lab: Lab): string[] {
  return ['/etc/nix', '/root/.ssh', '/home/runner/.ssh'].map(path => hostPath(lab, path))
}

/**
 * A derivation no store can hold yet (a nonce), needing no nixpkgs: `-f <file> --argstr nonce … --argstr system …`.
 * `seconds` slows it down; `fail` makes the builder exit 3; `localInput` gives it an input that Nix builds on the
 * runner whenever it may build locally.
 */
export function freshDerivation(
  lab: Lab,
  options: {
    system?: string
    seconds?: number
    fail?: boolean
    features?: string[]
    localInput?: boolean
  } = {}
): { args: string; nonce: string; name: string; file: string } {
  const nonce = randomBytes(6).toString('hex')
  const dir = mkdtempSync(hostPath(lab, '/tmp/nix-offload-expr-')).slice(lab.runner.root.length)
  const file = join(dir, 'default.nix')
  const features = (options.features ?? []).map(f => `"${f}"`).join(' ')
  writeFileSync(
    hostPath(lab, file),
    `{ nonce, system }: rec {
  # With --max-jobs > 0 Nix builds a preferLocalBuild derivation on the runner, never on a builder.
  input = builtins.derivation {
    name = "nix-offload-test-input-\${nonce}";
    inherit system;
    preferLocalBuild = true;
    builder = "/bin/sh";
    args = [ "-c" "echo input \${nonce} > $out" ];
  };
  drv = builtins.derivation ({
    name = "nix-offload-test-\${nonce}";
    inherit system;
    requiredSystemFeatures = [ ${features} ];
    builder = "/bin/sh";
    args = [ "-c" "echo building \${nonce}; ${options.seconds ? `/bin/sleep ${options.seconds}; ` : ''}${options.fail ? 'exit 3; ' : ''}echo \${nonce} > $out" ];
  }${options.localInput ? ' // { inherit input; }' : ''});
}
`
  )
  chownTree(hostPath(lab, dir), lab.runnerUser)
  const system = options.system ?? lab.localSystem
  return {
    args: `-f ${file} --argstr nonce ${nonce} --argstr system ${system}`,
    nonce,
    name: `nix-offload-test-${nonce}`,
    file
  }
}

/**
 * A fresh expression file of the runner's (made like freshDerivation's, its nonce new) whose body is `attributes`:
 * Nix source for `{ nonce, system }: { … }` (`rec { … }` with `recursive`). `-f file --argstr nonce … --argstr system …`.
 */
export function derivationFile(
  lab: Lab,
  attributes: string,
  options: { recursive?: boolean } = {}
): { args: string; nonce: string; file: string } {
  const { args, nonce, file } = freshDerivation(lab)
  writeFileSync(
    hostPath(lab, file),
    `{ nonce, system }: ${options.recursive === true ? 'rec ' : ''}{\n${attributes}\n}\n`
  )
  return { args, nonce, file }
}

/**
 * `count` fresh derivations d1…dN in one file, `nix-offload-test-<nonce>-<n>`, each printing `building <nonce>`,
 * sleeping `seconds` if given and needing `features(n - 1)`; `installables` names them all, one a line.
 */
export function numberedDerivations(
  lab: Lab,
  count: number,
  options: { seconds?: number; features?: (index: number) => string[] } = {}
): { args: string; installables: string; names: string[]; nonce: string } {
  const indexes = Array.from({ length: count }, (_, index) => index + 1)
  const sleep = options.seconds === undefined ? '' : `/bin/sleep ${options.seconds}; `
  const body = indexes
    .map(index => {
      const features = (options.features?.(index - 1) ?? []).map(f => `"${f}"`).join(' ')
      return (
        `  d${index} = builtins.derivation { name = "nix-offload-test-\${nonce}-${index}"; inherit system; ` +
        `builder = "/bin/sh"; requiredSystemFeatures = [ ${features} ]; ` +
        `args = [ "-c" "echo building \${nonce}; ${sleep}echo ${index} \${nonce} > $out" ]; };`
      )
    })
    .join('\n')
  const { args, nonce } = derivationFile(lab, body)
  return {
    args,
    installables: indexes.map(index => `d${index}`).join('\n'),
    names: indexes.map(index => `nix-offload-test-${nonce}-${index}`),
    nonce
  }
}

export function inStore(storeDir: string, outPath: string): boolean {
  return existsSync(join(storeDir, basename(outPath)))
}

function asUser(lab: Lab, runAs: RunAs): string[] {
  // The primary group by number: it need not be named after the user (a GitHub-hosted runner's is `docker`), and
  // lab/rootfs.sh gives the runner the host's uid and gid in every root filesystem.
  const gid = String(passwdEntry(lab.runnerUser).gid)
  return runAs === 'runner' ? ['setpriv', '--reuid', lab.runnerUser, '--regid', gid, '--init-groups'] : []
}

export interface CommandResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command on the runner, as root or the runner user, and collects its output. */
export function runCommandAs(
  lab: Lab,
  runAs: RunAs,
  argv: string[],
  env: Record<string, string> = {}
): Promise<CommandResult> {
  return runOnHost(runnerArgv(lab, runAs, argv), {
    HOME: runAs === 'runner' ? `/home/${lab.runnerUser}` : '/root',
    ...env
  })
}

/** The host's argv that runs `argv` on the runner as `runAs`, for a caller that wraps it in a command of its own. */
export function runnerArgv(lab: Lab, runAs: RunAs, argv: string[]): string[] {
  return onRunner(lab, [...asUser(lab, runAs), ...argv])
}

/** Runs a command on the host, as root: the lab's scripts, a look into a builder's store. */
export function runOnHost(argv: string[], env: Record<string, string> = {}): Promise<CommandResult> {
  const [command = '', ...args] = argv
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
        HOME: '/root',
        ...env
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', chunk => (stdout += String(chunk)))
    child.stderr.on('data', chunk => (stderr += String(chunk)))
    child.on('error', reject)
    child.on('close', code => resolvePromise({ code, stdout, stderr }))
  })
}

/** The command lines of the action's SSH master processes (their control paths name its work directory). */
/**
 * The masters in `now` that were not in `before` (both from sshMasters): what one step left, whatever an earlier test
 * left behind (a master persists 10 minutes after its last session).
 */
export function newMasters(before: string, now: string): string {
  const old = new Set(before.split('\n').filter(Boolean))
  return now
    .split('\n')
    .filter(line => line !== '' && !old.has(line))
    .join('\n')
}

export async function sshMasters(lab: Lab): Promise<string> {
  const found = (await runOnHost(['sh', '-c', 'pgrep -af "nix-offload-[0-9a-f]+/cm-" || true'])).stdout
  // Only this runner's: every runner of the lab shares the host's processes, and their paths read the same.
  const root = lab.runner.root === '' ? '/' : lab.runner.root
  return found
    .split('\n')
    .filter(line => {
      const pid = line.split(' ')[0] ?? ''
      try {
        return line !== '' && readlinkSync(`/proc/${pid}/root`) === root
      } catch {
        return false // it ended meanwhile
      }
    })
    .join('\n')
}

/** `user`'s uid and primary gid in the host's /etc/passwd. */
function passwdEntry(user: string): { uid: number; gid: number } {
  const fields = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find(l => l.startsWith(`${user}:`))
    ?.split(':')
  return { uid: Number(fields?.[2]), gid: Number(fields?.[3]) }
}

/** Gives `path` to `user`, whose uid and gid are the same on the host and in every runner's root filesystem. */
export function chownTree(path: string, user: string): void {
  const { uid, gid } = passwdEntry(user)
  const visit = (p: string): void => {
    chownSync(p, uid, gid)
    if (lstatSync(p).isDirectory()) for (const name of readdirSync(p)) visit(join(p, name))
  }
  visit(path)
}

/** The first error line the step printed: what a user reads first. */
export function firstError(result: StepResult): string {
  return (
    visibleLog(result)
      .split('\n')
      .find(line => line.startsWith('::error')) ?? ''
  )
}

/** Main, then post, which must succeed, leave no SSH master of the step and the runner's files as they were. */
export async function mainThenPost(lab: Lab, inputs: Record<string, string>): Promise<StepResult> {
  const before = snapshot(watched(lab))
  const mastersBefore = await sshMasters(lab)
  const main = await runMain(lab, inputs)
  const post = await runPost(lab, main)
  if (post.code !== 0) throw new Error(`the post step failed:\n${post.stdout}${post.stderr}`)
  const masters = newMasters(mastersBefore, await sshMasters(lab))
  if (masters !== '') throw new Error(`the step left SSH masters running:\n${masters}`)
  if (JSON.stringify(snapshot(watched(lab))) !== JSON.stringify(before))
    throw new Error("the step left the runner's files changed")
  return main
}
