import { Input } from './constants.js'
import { InputError } from './errors.js'
import { type Protocol, printable } from './fields.js'

/**
 * The `remote-program` input: where the builders' Nix programs are, for a builder whose non-interactive PATH has no
 * Nix (macOS's default). Nix takes it as the store setting `remote-program` (ssh-ng: `nix-daemon`, ssh: `nix-store`).
 */

/** What the input names: a directory of Nix's programs, or one program in it. */
export interface RemoteProgram {
  /** The directory, without a trailing `/`: the `nix` the preflight asks with sits there too. */
  directory: string
  /** Set when the input names the program itself: it then serves only builders of that protocol. */
  program?: 'nix-daemon' | 'nix-store'
}

/**
 * Only characters that Nix renders unchanged in a store URI's query (Nix 2.20+ prints the machine as a rendered URI,
 * which percent-encodes any other: the log would then name a machine the action never wrote) and that no shell
 * reads specially (Nix hands the program to the builder's shell as the remote command).
 */
const SAFE_PATH = /^(?:\/[A-Za-z0-9._-]+)+\/?$/

const PROGRAMS = ['nix-daemon', 'nix-store'] as const

/** The input's value, or undefined when it is empty (Nix's default: the program from the builder's PATH). */
export function parseRemoteProgram(value: string): RemoteProgram | undefined {
  const path = value.trim()
  if (path === '') return undefined
  if (!SAFE_PATH.test(path) || path.split('/').some(part => part === '.' || part === '..')) {
    throw new InputError(
      Input.RemoteProgram,
      `"${printable(path)}" is not an absolute path of letters, digits, ".", "_", "-" and "/"; give the directory of ` +
        "Nix's programs on the builders, e.g. `remote-program: /nix/var/nix/profiles/default/bin`"
    )
  }
  const trimmed = path.replace(/\/$/, '')
  const name = trimmed.slice(trimmed.lastIndexOf('/') + 1)
  const program = PROGRAMS.find(known => known === name)
  if (program === undefined || path.endsWith('/')) return { directory: trimmed }
  return { directory: trimmed.slice(0, trimmed.lastIndexOf('/')) || '/', program }
}

/** The program Nix runs on a builder of this protocol: a full path with the input set, else the name PATH finds. */
export function programFor(protocol: Protocol, remote: RemoteProgram | undefined): string {
  const name = protocol === 'ssh-ng' ? 'nix-daemon' : 'nix-store'
  if (remote === undefined) return name
  return `${remote.directory.replace(/\/$/, '')}/${name}`
}

/** Refuses a program that a builder's protocol does not run (ssh-ng runs nix-daemon, ssh runs nix-store). */
export function checkProgramFits(
  remote: RemoteProgram | undefined,
  protocol: Protocol,
  origin: string
): void {
  if (remote?.program === undefined) return
  const wanted = programFor(protocol, undefined)
  if (remote.program === wanted) return
  throw new InputError(
    Input.RemoteProgram,
    `names ${remote.program}, but the ${protocol} builder of ${origin} runs ${wanted}; give their directory ` +
      `instead (\`remote-program: ${remote.directory}\`) and the action picks the program for each builder`
  )
}

/** The `nix` beside a builder's remote program, for the action's own questions to that builder's store. */
export function nixBeside(program: string): string {
  return program.includes('/') ? `${program.slice(0, program.lastIndexOf('/'))}/nix` : 'nix'
}
