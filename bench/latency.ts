/**
 * A TCP proxy that holds every chunk for a fixed time in each direction: a builder "behind" a network with a
 * round-trip time of 2 × `oneWayMs`, on a machine whose kernel has no netem. It models latency only (no bandwidth
 * limit, no loss); chunks keep their order, since timers of equal delay fire in the order they were set.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface LatencyProxy {
  port: number
  close: () => Promise<void>
}

export async function startLatencyProxy(host: string, port: number, oneWayMs: number): Promise<LatencyProxy> {
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect({ host, port })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.setNoDelay(true)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => undefined)
    }
    const relay = (from: Socket, to: Socket): void => {
      from.on('data', chunk => setTimeout(() => to.write(chunk), oneWayMs))
      from.on('end', () => setTimeout(() => to.end(), oneWayMs))
      from.on('close', () => setTimeout(() => to.destroy(), oneWayMs))
    }
    relay(client, upstream)
    relay(upstream, client)
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
