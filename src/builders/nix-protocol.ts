import { u64, WireInbox, wireString } from './nix-wire.js'

/**
 * The client's side of the two protocols Nix speaks over SSH, as far as the preflight needs them: enough to learn, on
 * a key that runs only `nix-daemon --stdio` or `nix-store --serve`, which it is, what that end reports about itself,
 * and whether its store answers.
 */

export const WORKER_MAGIC_1 = 0x6e697863
export const WORKER_MAGIC_2 = 0x6478696f
export const SERVE_MAGIC_1 = 0x390c9deb
export const SERVE_MAGIC_2 = 0x5452eecb

/**
 * 1.37: from 1.38 both ends exchange feature sets, which this client does not implement; a newer daemon talks the
 * version both know. 1.33 adds the daemon's Nix version, 1.35 whether it trusts the user.
 */
const CLIENT_VERSION = (1 << 8) | 37
/** 2.5; nix-store --serve answers with its own version whatever the client's. */
const SERVE_CLIENT_VERSION = 0x205

const STDERR_NEXT = 0x6f6c6d67
const STDERR_READ = 0x64617461
const STDERR_WRITE = 0x64617416
const STDERR_LAST = 0x616c7473
const STDERR_ERROR = 0x63787470
const STDERR_START_ACTIVITY = 0x53545254
const STDERR_STOP_ACTIVITY = 0x53544f50
const STDERR_RESULT = 0x52534c54

const WOP_IS_VALID_PATH = 1

/** No such path exists anywhere: the question only asks the store to answer. */
const MADE_UP_PATH = '/nix/store/00000000000000000000000000000000-nix-offload-preflight'

export function minorOf(version: number): number {
  return version & 0xff
}

export function protocolText(version: number): string {
  return `${version >> 8}.${minorOf(version)}`
}

/** What the first eight bytes of a channel's stdout say: a daemon that took the client magic answers with its own. */
export function startsWithDaemonMagic(stdout: Buffer): boolean {
  return stdout.length >= 8 && stdout.readBigUInt64LE(0) === BigInt(WORKER_MAGIC_2)
}

/** What `nix-store --serve` writes to stderr when it reads another magic than its own (Nix 2.8 through 2.34). */
export function isServeMismatch(stderr: string): boolean {
  return /protocol mismatch/.test(stderr)
}

/** What a forced `nix-daemon --stdio` says of itself in the handshake. */
export interface DaemonGreeting {
  /** The protocol version both ends use, e.g. "1.34". */
  protocol: string
  minor: number
  /** Reported from protocol 1.33 (Nix 2.4); empty before. */
  nixVersion: string
  /** Reported from protocol 1.35 (Nix 2.15); undefined when the daemon did not say. */
  trusted?: boolean
  /** The error the daemon ended the handshake with (e.g. its store could not be opened). */
  refused?: string
}

/** Whether the daemon's store answered one question, and how fast. */
export interface StoreRoundTrip {
  storeAnswers: boolean
  storeError?: string
  /** Milliseconds, to a tenth. */
  storeMs: number
}

/**
 * Finishes the worker protocol's handshake on a channel whose daemon has answered the client magic (its own magic is
 * the first thing in `inbox`).
 */
export async function greetDaemon(inbox: WireInbox, write: (bytes: Buffer) => void): Promise<DaemonGreeting> {
  if ((await inbox.number()) !== WORKER_MAGIC_2) throw new Error('the daemon answered with another magic')
  const daemonVersion = await inbox.number()
  if (daemonVersion >> 8 !== 1) throw new Error(`unknown worker protocol ${protocolText(daemonVersion)}`)
  const version = Math.min(daemonVersion, CLIENT_VERSION)
  const minor = minorOf(version)
  // The obsolete CPU affinity (none) from 1.14 and space reservation (none) from 1.11.
  write(
    Buffer.concat([u64(CLIENT_VERSION), ...(minor >= 14 ? [u64(0)] : []), ...(minor >= 11 ? [u64(0)] : [])])
  )
  const nixVersion = minor >= 33 ? await inbox.string() : ''
  // 0: the daemon does not say; 1 trusted; 2 not.
  const trust = minor >= 35 ? await inbox.number() : 0
  const greeting: DaemonGreeting = { protocol: protocolText(version), minor, nixVersion }
  if (trust !== 0) greeting.trusted = trust === 1
  const refused = await readMessages(inbox, minor)
  if (refused !== undefined) greeting.refused = refused
  return greeting
}

/** Asks the daemon's store whether a made-up path is valid: the answer does not matter, that it comes does. */
export async function askDaemonStore(
  inbox: WireInbox,
  write: (bytes: Buffer) => void,
  minor: number
): Promise<StoreRoundTrip> {
  const started = process.hrtime.bigint()
  write(Buffer.concat([u64(WOP_IS_VALID_PATH), wireString(MADE_UP_PATH)]))
  const error = await readMessages(inbox, minor)
  if (error === undefined) await inbox.number()
  const storeMs = Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10
  // A builder whose store lives elsewhere than /nix/store refuses the path, and answered all the same.
  if (error === undefined || /is not in the Nix store/.test(error)) return { storeAnswers: true, storeMs }
  return { storeAnswers: false, storeError: error, storeMs }
}

/** Reads the daemon's log messages up to the end of its work: the error it ended with, if any. */
async function readMessages(inbox: WireInbox, minor: number): Promise<string | undefined> {
  for (;;) {
    const kind = await inbox.number()
    if (kind === STDERR_LAST) return undefined
    if (kind === STDERR_ERROR) return readError(inbox, minor)
    if (kind === STDERR_NEXT || kind === STDERR_WRITE) await inbox.string()
    else if (kind === STDERR_STOP_ACTIVITY) await inbox.number()
    else if (kind === STDERR_START_ACTIVITY) {
      await skipNumbers(inbox, 3)
      await inbox.string()
      await skipFields(inbox)
      await inbox.number()
    } else if (kind === STDERR_RESULT) {
      await skipNumbers(inbox, 2)
      await skipFields(inbox)
    } else if (kind === STDERR_READ) throw new Error('the daemon asked for data the preflight never sends')
    else throw new Error(`an unknown message from the daemon (0x${kind.toString(16)})`)
  }
}

/** From 1.26 an error is structured: type, level, name, message, position, traces; before, a message and a status. */
async function readError(inbox: WireInbox, minor: number): Promise<string> {
  if (minor < 26) {
    const message = await inbox.string()
    await inbox.number()
    return message
  }
  await inbox.string()
  await inbox.number()
  await inbox.string()
  const message = await inbox.string()
  await inbox.number()
  const traces = await inbox.number()
  for (let index = 0; index < traces; index++) {
    await inbox.number()
    await inbox.string()
  }
  return message
}

async function skipNumbers(inbox: WireInbox, count: number): Promise<void> {
  for (let index = 0; index < count; index++) await inbox.number()
}

/** An activity's fields: a count, then each a type (0 a number, 1 a string) and its value. */
async function skipFields(inbox: WireInbox): Promise<void> {
  const count = await inbox.number()
  for (let index = 0; index < count; index++) {
    if ((await inbox.number()) === 0) await inbox.number()
    else await inbox.string()
  }
}

/** The client's opening of the serve protocol. */
export function serveHello(): Buffer {
  return Buffer.concat([u64(SERVE_MAGIC_1), u64(SERVE_CLIENT_VERSION)])
}

/** The serve protocol's version, e.g. "2.7", from `nix-store --serve`'s answer to serveHello. */
export async function serveHandshake(inbox: WireInbox): Promise<string> {
  if ((await inbox.number()) !== SERVE_MAGIC_2)
    throw new Error('nix-store --serve answered with another magic')
  return protocolText(await inbox.number())
}

/** The client's opening of the worker protocol, written to every command the preflight runs. */
export function clientMagic(): Buffer {
  return u64(WORKER_MAGIC_1)
}
