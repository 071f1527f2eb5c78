import { describe, expect, it } from 'vitest'
import {
  askDaemonStore,
  greetDaemon,
  isServeMismatch,
  serveHandshake,
  serveHello,
  startsWithDaemonMagic,
  WORKER_MAGIC_2,
  SERVE_MAGIC_1,
  SERVE_MAGIC_2
} from '../../../src/builders/nix-protocol.js'
import { u64, WireInbox, wireString } from '../../../src/builders/nix-wire.js'

/** A daemon's side, written ahead: what it would send, and what the client wrote. */
function daemon(...parts: Buffer[]): { inbox: WireInbox; written: Buffer[] } {
  const inbox = new WireInbox()
  inbox.push(Buffer.concat(parts))
  return { inbox, written: [] }
}

const LAST = u64(0x616c7473)
const version = (minor: number): Buffer => u64((1 << 8) | minor)

describe('wire framing', () => {
  it('pads a string to a multiple of eight bytes', () => {
    expect(wireString('2.8.0')).toEqual(Buffer.concat([u64(5), Buffer.from('2.8.0'), Buffer.alloc(3)]))
    expect(wireString('12345678').length).toBe(16)
  })

  it('rejects a read that the end of the channel cuts short', async () => {
    const inbox = new WireInbox()
    inbox.push(Buffer.alloc(4))
    inbox.end()
    await expect(inbox.number()).rejects.toThrow('closed in the middle')
  })

  it('waits for bytes that come in pieces', async () => {
    const inbox = new WireInbox()
    const reading = inbox.string()
    const whole = wireString('nix-daemon')
    inbox.push(whole.subarray(0, 5))
    inbox.push(whole.subarray(5))
    await expect(reading).resolves.toBe('nix-daemon')
  })
})

describe('greetDaemon', () => {
  it('Nix 2.8 (protocol 1.34): sends affinity and reservation, reads the version, no trust', async () => {
    const { inbox, written } = daemon(u64(WORKER_MAGIC_2), version(34), wireString('2.8.0'), LAST)
    const greeting = await greetDaemon(inbox, bytes => written.push(bytes))
    expect(greeting).toEqual({ protocol: '1.34', minor: 34, nixVersion: '2.8.0' })
    expect(Buffer.concat(written)).toEqual(Buffer.concat([version(37), u64(0), u64(0)]))
  })

  it('a daemon newer than 1.37 talks 1.37 (no feature exchange) and says whether it trusts the user', async () => {
    const { inbox } = daemon(u64(WORKER_MAGIC_2), version(38), wireString('2.34.8'), u64(2), LAST)
    const greeting = await greetDaemon(inbox, () => undefined)
    expect(greeting).toMatchObject({ protocol: '1.37', nixVersion: '2.34.8', trusted: false })
  })

  it('reads past log messages and activities to the end of the work', async () => {
    const next = Buffer.concat([u64(0x6f6c6d67), wireString('warning: something')])
    const start = Buffer.concat([
      u64(0x53545254),
      u64(7),
      u64(3),
      u64(0),
      wireString('copying'),
      u64(2),
      u64(0),
      u64(42),
      u64(1),
      wireString('field'),
      u64(0)
    ])
    const stop = Buffer.concat([u64(0x53544f50), u64(7)])
    const { inbox } = daemon(
      u64(WORKER_MAGIC_2),
      version(35),
      wireString('2.15.0'),
      u64(1),
      next,
      start,
      stop,
      LAST
    )
    await expect(greetDaemon(inbox, () => undefined)).resolves.toMatchObject({ trusted: true })
  })

  it('keeps the error a daemon ends its handshake with', async () => {
    const error = Buffer.concat([
      u64(0x63787470),
      wireString('Error'),
      u64(0),
      wireString('Error'),
      wireString("cannot open connection to remote store 'daemon'"),
      u64(0),
      u64(1),
      u64(0),
      wireString('while opening')
    ])
    const { inbox } = daemon(u64(WORKER_MAGIC_2), version(34), wireString('2.8.0'), error)
    const greeting = await greetDaemon(inbox, () => undefined)
    expect(greeting.refused).toBe("cannot open connection to remote store 'daemon'")
  })
})

describe('askDaemonStore', () => {
  it('asks one made-up path and times the answer', async () => {
    const written: Buffer[] = []
    const { inbox } = daemon(LAST, u64(0))
    const trip = await askDaemonStore(inbox, bytes => written.push(bytes), 34)
    expect(trip.storeAnswers).toBe(true)
    expect(Buffer.concat(written).readBigUInt64LE(0)).toBe(1n)
  })

  it('a store that refuses the path for being outside it has answered all the same', async () => {
    const error = (message: string): Buffer =>
      Buffer.concat([
        u64(0x63787470),
        wireString('Error'),
        u64(0),
        wireString('Error'),
        wireString(message),
        u64(0),
        u64(0)
      ])
    const outside = await askDaemonStore(
      daemon(error("path '/nix/store/0-x' is not in the Nix store")).inbox,
      () => undefined,
      34
    )
    expect(outside.storeAnswers).toBe(true)
    const broken = await askDaemonStore(
      daemon(error('database disk image is malformed')).inbox,
      () => undefined,
      34
    )
    expect(broken).toMatchObject({ storeAnswers: false, storeError: 'database disk image is malformed' })
  })
})

describe('recognising the forced program', () => {
  it("a daemon's magic, never a shell's output", () => {
    expect(startsWithDaemonMagic(u64(WORKER_MAGIC_2))).toBe(true)
    expect(startsWithDaemonMagic(Buffer.from('@@nix-offload found yes\n'))).toBe(false)
    expect(startsWithDaemonMagic(u64(WORKER_MAGIC_2).subarray(0, 4))).toBe(false)
  })

  it("nix-store --serve's refusal of the worker magic", () => {
    expect(isServeMismatch('error: protocol mismatch\n')).toBe(true)
    expect(isServeMismatch('sh: nix: not found\n')).toBe(false)
  })

  it("the serve handshake: the client's magic and version, the server's magic and version", async () => {
    expect(serveHello().readBigUInt64LE(0)).toBe(BigInt(SERVE_MAGIC_1))
    const inbox = new WireInbox()
    inbox.push(Buffer.concat([u64(SERVE_MAGIC_2), u64(0x207)]))
    await expect(serveHandshake(inbox)).resolves.toBe('2.7')
  })
})
