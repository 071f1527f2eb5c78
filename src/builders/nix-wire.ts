/**
 * The framing shared by Nix's worker protocol (`nix-daemon --stdio`) and serve protocol (`nix-store --serve`): each
 * number a little-endian u64, each string its length as one and then its bytes, zero-padded to a multiple of 8.
 */

export function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8)
  buffer.writeBigUInt64LE(BigInt(value))
  return buffer
}

export function wireString(text: string): Buffer {
  const bytes = Buffer.from(text)
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)])
}

/** The longest string the preflight takes from a builder: a version line or an error message, never a file. */
const MAX_STRING = 64 * 1024

/**
 * What a channel's stdout has brought so far, read in pieces as the protocol asks for them. A read the channel's end
 * cuts short rejects.
 */
export class WireInbox {
  private buffered = Buffer.alloc(0)
  private ended = false
  private waiter: (() => void) | undefined

  push(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk])
    this.wake()
  }

  end(): void {
    this.ended = true
    this.wake()
  }

  /** Everything not yet read. */
  get pending(): Buffer {
    return this.buffered
  }

  async bytes(count: number): Promise<Buffer> {
    while (this.buffered.length < count) {
      if (this.ended) throw new Error('the channel closed in the middle of an answer')
      await new Promise<void>(resolve => (this.waiter = resolve))
    }
    const taken = this.buffered.subarray(0, count)
    this.buffered = this.buffered.subarray(count)
    return taken
  }

  async number(): Promise<number> {
    const value = (await this.bytes(8)).readBigUInt64LE()
    if (value > BigInt(Number.MAX_SAFE_INTEGER))
      throw new Error(`a number too large for the protocol: ${value}`)
    return Number(value)
  }

  async string(): Promise<string> {
    const length = await this.number()
    if (length > MAX_STRING) throw new Error(`a string of ${length} bytes where a short one was expected`)
    const padded = length + ((8 - (length % 8)) % 8)
    return (await this.bytes(padded)).subarray(0, length).toString()
  }

  private wake(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }
}
