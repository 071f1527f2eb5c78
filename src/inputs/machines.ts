import { isIP } from 'node:net'
import { label } from './builder.js'
import { Input } from './constants.js'
import { InputError } from './errors.js'
import { type HostKey, parseHostKey } from './keys.js'
import {
  type Auto,
  CONTROL,
  FEATURE,
  orAuto,
  parseCount,
  parseHost,
  parseList,
  parsePort,
  parseUser,
  printable,
  type Protocol,
  SYSTEM
} from './fields.js'

/**
 * The `builders` input in Nix's machines format: entries separated by newlines or `;`, `#` to the end of a line a
 * comment, and per entry up to eight whitespace-separated columns, `-` taking a column's default:
 * URI, systems, SSH key path, max jobs, speed factor, supported features, mandatory features, base64 host key.
 */

/** One entry of the `builders` input, checked column by column. */
export interface MachineLine {
  protocol: Protocol
  user: string
  host: string
  port: number
  /** `remote-program=` from the URI: the command that serves the store on the builder. */
  remoteProgram?: string
  /** Its systems column was `-` or missing: it took the runner's system. */
  systemDefaulted?: boolean
  systems: string[] | Auto
  maxJobs: number | Auto
  speedFactor: number
  supportedFeatures: string[] | Auto
  mandatoryFeatures: string[]
  /** Column 8, decoded: the builder's host key, pinned as a `known-hosts` line would pin it. */
  hostKey?: HostKey
  /** `input 'builders' line N`, with the entry when a line holds several. */
  origin: string
}

export interface Machines {
  machines: MachineLine[]
  /** Values the action replaces or fills in, said once so that nobody wonders where they went. */
  notices: string[]
}

/** What ssh logs in as when the URI names no user: the nix-daemon runs it as root. */
const DEFAULT_USER = 'root'
const MAX_COLUMNS = 8
const COLUMNS =
  '"URI systems ssh-key max-jobs speed-factor supported-features mandatory-features host-key", as in ' +
  '/etc/nix/machines'
const HOST_KEY_FIX =
  "expected the base64 of the builder's host key line (base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub), or -"
const KEY_SOURCE = `the action's own key from '${Input.SshPrivateKey}'`

export function parseMachines(text: string, defaultSystem: string): Machines {
  const result: Machines = { machines: [], notices: [] }
  for (const entry of machineEntries(text)) {
    result.machines.push(parseMachineLine(entry, defaultSystem, result.notices))
  }
  return result
}

interface Entry {
  text: string
  /** `line N` or `line N, entry M` */
  where: string
}

function machineEntries(text: string): Entry[] {
  const entries: Entry[] = []
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '').replace(/#.*/, '')
    if (CONTROL.test(line.replace(/\t/g, ' '))) {
      throw new InputError(Input.Builders, `line ${index + 1} contains a control character`)
    }
    const listed = line
      .split(';')
      .map(part => part.trim())
      .filter(part => part !== '')
    for (const [position, part] of listed.entries()) {
      const where = listed.length > 1 ? `line ${index + 1}, entry ${position + 1}` : `line ${index + 1}`
      entries.push({ text: part, where })
    }
  }
  return entries
}

function parseMachineLine(entry: Entry, defaultSystem: string, notices: string[]): MachineLine {
  const { where } = entry
  if (entry.text.startsWith('@')) {
    throw new InputError(
      Input.Builders,
      `${where}: "${printable(entry.text)}" includes a file from the runner; paste that file's lines instead`
    )
  }
  const columns = entry.text.split(/[ \t]+/)
  if (columns.length > MAX_COLUMNS) {
    throw new InputError(
      Input.Builders,
      `${where} has ${columns.length} columns; expected at most ${MAX_COLUMNS}: ${COLUMNS} (separate builders ` +
        'with a new line or ";")'
    )
  }
  const [uri = '', systems = '-', keyPath = '-', maxJobs = '-', speedFactor = '-'] = columns
  const [supported = '-', mandatory = '-', hostKey = '-'] = columns.slice(5)
  const at = (column: number, name: string): string => `${where}, column ${column} (${name}): `
  const input = Input.Builders
  const address = parseStoreUri(uri, at(1, 'URI'))
  refuseCountAsKeyPath(keyPath, at(3, 'ssh-key'))
  const machine: MachineLine = {
    ...address.store,
    systems: given(systems, [defaultSystem], value =>
      orAuto(value, list => parseList(input, list, SYSTEM, 'a Nix system', at(2, 'systems')))
    ),
    ...(systems === '-' ? { systemDefaulted: true } : {}),
    maxJobs: given(maxJobs, 1, value =>
      orAuto(value, count => parseCount(input, count, 1, at(4, 'max-jobs')))
    ),
    speedFactor: given(speedFactor, 1, value => parseCount(input, value, 1, at(5, 'speed-factor'))),
    supportedFeatures: given(supported, [], value =>
      orAuto(value, list => parseList(input, list, FEATURE, 'a feature', at(6, 'supported-features')))
    ),
    mandatoryFeatures: given(mandatory, [], value =>
      parseList(input, value, FEATURE, 'a feature', at(7, 'mandatory-features'))
    ),
    origin: `input '${input}' ${where}`
  }
  if (hostKey !== '-') machine.hostKey = parseHostKeyColumn(hostKey, at(8, 'host-key'))
  notices.push(...addressNotices(machine, where, address.ignored))
  if (keyPath !== '-') notices.push(ignoredKeyNotice(machine, where, `"${printable(keyPath)}" in column 3`))
  return machine
}

/** A number where the key path goes is max-jobs from a line that left the key path out. */
function refuseCountAsKeyPath(keyPath: string, at: string): void {
  if (!/^\d+$/.test(keyPath) && keyPath !== 'auto') return
  throw new InputError(
    Input.Builders,
    `${at}"${printable(keyPath)}" is not a key path; columns follow /etc/nix/machines, with the SSH key path third: ` +
      `for max-jobs ${printable(keyPath)}, write "- ${printable(keyPath)}" after the systems`
  )
}

function given<T>(value: string, fallback: T, parse: (value: string) => T): T {
  return value === '-' ? fallback : parse(value)
}

interface StoreAddress {
  store: Pick<MachineLine, 'protocol' | 'user' | 'host' | 'port' | 'remoteProgram'>
  /** What the URI said that the action does not use: its `ssh-key=`, whether it named no user. */
  ignored: { keyPath?: string; noUser: boolean }
}

/** `ssh://` and `ssh-ng://` store URIs, and the bare `[user@]host[:port]` that Nix reads as `ssh://`. */
function parseStoreUri(uri: string, at: string): StoreAddress {
  const input = Input.Builders
  const queryStart = uri.indexOf('?')
  const address = queryStart === -1 ? uri : uri.slice(0, queryStart)
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(address)
  const protocol = scheme === null ? 'ssh' : parseScheme(scheme[1] ?? '', at)
  const authority = scheme === null ? address : address.slice(scheme[0].length)
  const atSign = authority.indexOf('@')
  const user = atSign === -1 ? DEFAULT_USER : parseUser(input, authority.slice(0, atSign), at)
  const { host, port } = parseHostPort(authority.slice(atSign + 1), at)
  const query = queryStart === -1 ? {} : parseQuery(uri.slice(queryStart + 1), at)
  const store: StoreAddress['store'] = { protocol, user, host, port }
  if (query.remoteProgram !== undefined) store.remoteProgram = query.remoteProgram
  const ignored: StoreAddress['ignored'] = { noUser: atSign === -1 }
  if (query.keyPath !== undefined) ignored.keyPath = query.keyPath
  return { store, ignored }
}

function parseScheme(scheme: string, at: string): Protocol {
  if (scheme === 'ssh-ng' || scheme === 'ssh') return scheme
  throw new InputError(
    Input.Builders,
    `${at}"${printable(scheme)}://" is not an SSH store; write the builder as ssh-ng://user@host or ssh://user@host`
  )
}

/** `host`, `host:port`, `[address]`, `[address]:port`, or an IPv6 address without brackets (port 22). */
function parseHostPort(text: string, at: string): { host: string; port: number } {
  const input = Input.Builders
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text)
  if (bracketed !== null) {
    const [, host = '', port] = bracketed
    return { host: parseHost(input, host, at), port: port === undefined ? 22 : parsePort(input, port, at) }
  }
  if (isIP(text) === 6) return { host: text, port: 22 }
  const colon = text.indexOf(':')
  if (colon === -1) return { host: parseHost(input, text, at), port: 22 }
  return {
    host: parseHost(input, text.slice(0, colon), at),
    port: parsePort(input, text.slice(colon + 1), at)
  }
}

/** The URI's `?name=value&…`: `remote-program` is kept, `ssh-key` is replaced by the action's key. */
function parseQuery(query: string, at: string): { remoteProgram?: string; keyPath?: string } {
  const found: { remoteProgram?: string; keyPath?: string } = {}
  for (const pair of query.split('&').filter(part => part !== '')) {
    const equals = pair.indexOf('=')
    const name = equals === -1 ? pair : pair.slice(0, equals)
    const value = decodeQueryValue(equals === -1 ? '' : pair.slice(equals + 1), name, at)
    if (name === 'remote-program') found.remoteProgram = parseRemoteProgram(value, at)
    else if (name === 'ssh-key') found.keyPath = value
    else {
      throw new InputError(
        Input.Builders,
        `${at}the URI parameter "${printable(name)}" is not supported here; remove it (only remote-program and ` +
          `ssh-key are read, and ssh-key is replaced by ${KEY_SOURCE})`
      )
    }
  }
  return found
}

function decodeQueryValue(value: string, name: string, at: string): string {
  let decoded: string
  try {
    decoded = decodeURIComponent(value)
  } catch {
    decoded = '\u0000'
  }
  if (!CONTROL.test(decoded)) return decoded
  throw new InputError(
    Input.Builders,
    `${at}the value of "${printable(name)}" is not a valid percent-encoded value without control characters`
  )
}

/**
 * A program's name, or its absolute path, of characters that Nix renders unchanged in a store URI's query (newer Nix
 * prints the machine as a rendered URI, which percent-encodes any other) and that no shell reads specially.
 */
const PROGRAM = /^(?:[A-Za-z0-9_][A-Za-z0-9._-]*|(?:\/[A-Za-z0-9_][A-Za-z0-9._-]*)+)$/

function parseRemoteProgram(value: string, at: string): string {
  if (PROGRAM.test(value)) return value
  throw new InputError(
    Input.Builders,
    `${at}remote-program "${printable(value)}" is not a command name or path; expected e.g. ` +
      '/nix/var/nix/profiles/default/bin/nix-daemon'
  )
}

/** Column 8: base64 of `type blob [comment]`, the builder's public host key line. */
function parseHostKeyColumn(value: string, at: string): HostKey {
  // The value is not quoted back: a pasted private key would be base64 too.
  const canonical = (text: string): string => text.replace(/=+$/, '')
  const bytes = Buffer.from(value, 'base64')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || canonical(bytes.toString('base64')) !== canonical(value)) {
    throw new InputError(Input.Builders, `${at}is not base64; ${HOST_KEY_FIX}`)
  }
  const decoded = bytes.toString('utf8').replace(/\r?\n$/, '')
  if (CONTROL.test(decoded.replace(/\t/g, ' '))) {
    throw new InputError(Input.Builders, `${at}decodes to more than one line; ${HOST_KEY_FIX}`)
  }
  const [type = '', blob = ''] = decoded.trim().split(/[ \t]+/)
  const key = parseHostKey(type, blob)
  if (typeof key === 'string') {
    throw new InputError(Input.Builders, `${at}decodes to no host key line: ${key}; ${HOST_KEY_FIX}`)
  }
  return key
}

function addressNotices(machine: MachineLine, where: string, ignored: StoreAddress['ignored']): string[] {
  const notices: string[] = []
  if (ignored.noUser) {
    notices.push(
      `Input '${Input.Builders}' ${where}: the URI names no user, so the action connects to ${machine.host} as ` +
        `${DEFAULT_USER}, as the nix-daemon's ssh would; write user@${machine.host} to choose another.`
    )
  }
  if (ignored.keyPath !== undefined) {
    notices.push(ignoredKeyNotice(machine, where, `"${printable(ignored.keyPath)}" in the URI's ssh-key`))
  }
  return notices
}

function ignoredKeyNotice(machine: MachineLine, where: string, path: string): string {
  return (
    `Input '${Input.Builders}' ${where}: builder ${label(machine)} is reached with ${KEY_SOURCE}; the key path ` +
    `${path} is ignored (it names a file the runner does not have).`
  )
}
