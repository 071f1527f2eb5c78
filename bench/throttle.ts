/**
 * A TCP proxy in front of the binary cache, for the runner and the builder alike: the same link for both sides. Its
 * link is set between runs: `direct` passes bytes through at once; a throttled link paces each connection to
 * `bytesPerSecond` in each direction and delivers every chunk `delayMs` late, in order (this kernel has no netem).
 * A reader that falls behind pauses the side that writes, so that a throttled NAR does not pile up here.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface Link {
  bytesPerSecond: number
  delayMs: number
}

export interface ThrottleProxy {
  port: number
  /** The link for connections opened from now on; undefined is direct. */
  setLink: (link: Link | undefined) => void
  close: () => Promise<void>
}

const HIGH_WATER = 4 * 1024 * 1024

/**
 * One direction of one connection over `link`. Chunks and the half-close leave in the order they came, from one queue
 * drained by one timer: separate timers per chunk could fire out of order (Node groups timers by duration), and an
 * end that overtook the last chunk cut the response short.
 */
function pace(from: Socket, to: Socket, link: Link | undefined): void {
  if (link === undefined) {
    from.pipe(to)
    return
  }
  const queue: { chunk: Buffer | undefined; due: number }[] = []
  let free = performance.now()
  let queued = 0
  let timer: NodeJS.Timeout | undefined
  const drain = (): void => {
    timer = undefined
    const now = performance.now()
    for (let next = queue[0]; next !== undefined && next.due <= now; next = queue[0]) {
      queue.shift()
      if (next.chunk === undefined) {
        to.end()
        return
      }
      to.write(next.chunk)
      queued -= next.chunk.length
    }
    if (queued <= HIGH_WATER) from.resume()
    const next = queue[0]
    if (next !== undefined) timer = setTimeout(drain, next.due - now)
  }
  const push = (chunk: Buffer | undefined): void => {
    if (chunk !== undefined)
      free = Math.max(free, performance.now()) + (chunk.length / link.bytesPerSecond) * 1000
    const due = Math.max(free, performance.now()) + link.delayMs
    queue.push({ chunk, due })
    timer ??= setTimeout(drain, due - performance.now())
  }
  from.on('data', (chunk: Buffer) => {
    queued += chunk.length
    if (queued > HIGH_WATER) from.pause()
    push(chunk)
  })
  from.on('end', () => push(undefined))
}

export async function startThrottleProxy(host: string, port: number): Promise<ThrottleProxy> {
  let link: Link | undefined
  const sockets = new Set<Socket>()
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on('close', () => sockets.delete(socket))
  }
  const server = createServer({ allowHalfOpen: true }, client => {
    track(client)
    const upstream = connect({ host, port, allowHalfOpen: true })
    track(upstream)
    pace(client, upstream, link)
    pace(upstream, client, link)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the throttling proxy has no port')
  return {
    port: address.port,
    setLink: next => (link = next),
    close: () =>
      new Promise(resolve => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
