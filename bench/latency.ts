/**
 * A TCP proxy that puts a builder "behind" a network with a round-trip time of 2 × `oneWayMs`, on a machine whose
 * kernel has no netem. It models latency only (no bandwidth limit, no loss):
 *
 * - the TCP handshake: the proxy connects upstream `oneWayMs` after accepting (the SYN's way there), and holds what the
 *   client sends until a full round trip after the accept (when a real client would have seen the SYN-ACK);
 * - every chunk then takes `oneWayMs` in its direction, in order;
 * - a half-close (FIN) travels like data, after what was sent before it.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface LatencyProxy {
  port: number
  close: () => Promise<void>
}

/** One direction of a connection: chunks and the final FIN, each delivered at its due time, in order. */
class DelayedPipe {
  private readonly queue: { due: number; chunk?: Buffer }[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly to: Socket,
    private readonly oneWayMs: number,
    /** Nothing is sent before this time (ms, performance.now()). */
    private readonly notBefore: number
  ) {}

  push(chunk?: Buffer): void {
    const due = Math.max(performance.now(), this.notBefore) + this.oneWayMs
    this.queue.push({ due: Math.max(due, this.queue.at(-1)?.due ?? 0), chunk })
    this.pump()
  }

  private pump(): void {
    if (this.timer !== undefined) return
    const now = performance.now()
    while (this.queue[0] !== undefined && this.queue[0].due <= now) {
      const { chunk } = this.queue.shift() as { chunk?: Buffer }
      if (chunk === undefined) this.to.end()
      else this.to.write(chunk)
    }
    const next = this.queue[0]
    if (next === undefined) return
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.pump()
      },
      Math.max(0, next.due - now)
    )
  }
}

export async function startLatencyProxy(host: string, port: number, oneWayMs: number): Promise<LatencyProxy> {
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => sockets.delete(socket))
  }
  const server = createServer({ allowHalfOpen: true }, client => {
    const accepted = performance.now()
    track(client)
    const toServerHeld: Buffer[] = []
    let ended = false
    let upstream: Socket | undefined
    // The client's bytes and FIN wait for a full round trip after the accept, then travel one way.
    let toServer: DelayedPipe | undefined
    const toClient = new DelayedPipe(client, oneWayMs, 0)
    client.on('data', chunk => (toServer ? toServer.push(chunk) : toServerHeld.push(chunk)))
    client.on('end', () => (toServer ? toServer.push() : (ended = true)))
    setTimeout(() => {
      upstream = connect({ host, port, allowHalfOpen: true })
      track(upstream)
      toServer = new DelayedPipe(upstream, oneWayMs, accepted + 2 * oneWayMs)
      for (const chunk of toServerHeld.splice(0)) toServer.push(chunk)
      if (ended) toServer.push()
      upstream.on('data', chunk => toClient.push(chunk))
      upstream.on('end', () => toClient.push())
      upstream.on('error', () => client.destroy())
    }, oneWayMs)
    client.on('error', () => upstream?.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the latency proxy has no port')
  return {
    port: address.port,
    close: () =>
      new Promise(resolve => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
